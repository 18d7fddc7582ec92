//! The built-in project: the course's dbt project, models verbatim. Its variants differ only in
//! `daily_metrics`: the partitioned filter (the lesson's end state), the first, max-based one,
//! and dbt's microbatch strategy (for comparing the three).

use crate::dbt::project::{Project, ProjectFiles};
use crate::error::{Error, Result};

/// The lesson's end state: `daily_metrics` filtered by `min_date`/`max_date` vars.
pub const LESSON: &str = "builtin:lesson";
/// `daily_metrics` as first written: `where date_of_business > (select max(...) from this)`.
pub const LESSON_FIRST_VERSION: &str = "builtin:lesson-first-version";
/// `daily_metrics` with dbt's microbatch strategy: one day per batch, a day of lookback.
pub const LESSON_MICROBATCH: &str = "builtin:lesson-microbatch";

const DBT_PROJECT: &str = include_str!("builtin/dbt_project.yml");
const SOURCES: &str = include_str!("builtin/sources.yml");
const STG_TRIPS: &str = include_str!("builtin/stg_trips.sql");
const STG_ZONES: &str = include_str!("builtin/stg_zones.sql");
const LOCATION_METRICS: &str = include_str!("builtin/location_metrics.sql");
const DAILY_METRICS: &str = include_str!("builtin/daily_metrics.sql");
const DAILY_METRICS_FIRST_VERSION: &str = include_str!("builtin/daily_metrics_first_version.sql");
const DAILY_METRICS_MICROBATCH: &str = include_str!("builtin/daily_metrics_microbatch.sql");

/// The files of a built-in project by its name (`builtin:lesson`, …).
pub fn builtin(name: &str) -> Result<Project> {
    let daily_metrics = match name {
        LESSON => DAILY_METRICS,
        LESSON_FIRST_VERSION => DAILY_METRICS_FIRST_VERSION,
        LESSON_MICROBATCH => DAILY_METRICS_MICROBATCH,
        other => {
            return Err(Error::project(
                other,
                format!("no such built-in project; there are {LESSON}, {LESSON_FIRST_VERSION} and {LESSON_MICROBATCH}"),
            ));
        }
    };
    let mut files = ProjectFiles::default();
    files.insert("dbt_project.yml", DBT_PROJECT);
    files.insert("models/sources.yml", SOURCES);
    files.insert("models/staging/stg_trips.sql", STG_TRIPS);
    files.insert("models/staging/stg_zones.sql", STG_ZONES);
    files.insert("models/marts/location_metrics.sql", LOCATION_METRICS);
    files.insert("models/marts/daily_metrics.sql", daily_metrics);
    files.parse()
}
