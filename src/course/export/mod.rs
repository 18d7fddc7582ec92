//! Leaving the browser for a real warehouse: a project exported as a zip that is a dbt project
//! (dbt-core + dbt-duckdb) with the Dagster code that runs its incremental models one daily
//! partition at a time, a loader for the raw tables and a README with the commands.

use std::io::Write;

use crate::dbt::project::{Project, ProjectFiles, builtin_dbt_utils};
use crate::error::{Error, Result};
use crate::sources::ingest::BUILTIN_ZONES;

const DEFINITIONS: &str = include_str!("definitions.py");
const LOAD_RAW: &str = include_str!("load_raw.py");
const README: &str = include_str!("README.md");

/// How Dagster launches a backfill of the daily partitions: the asset's `backfill_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillPolicy {
    /// One run over each range of partitions: dagster-dbt's default for time-window partitions.
    SingleRun,
    /// One run per partition, as the lesson's orchestrator runs them.
    RunPerPartition,
}

impl BackfillPolicy {
    pub fn of_single_run(single_run: bool) -> BackfillPolicy {
        if single_run { BackfillPolicy::SingleRun } else { BackfillPolicy::RunPerPartition }
    }

    fn python(self) -> &'static str {
        match self {
            BackfillPolicy::SingleRun => "BackfillPolicy.single_run()",
            BackfillPolicy::RunPerPartition => "BackfillPolicy.multi_run(max_partitions_per_run=1)",
        }
    }
}

/// The zip's files: the dbt project under `analytics/`, Dagster under `orchestration/`.
/// `start_date` (`YYYY-MM-DD`) starts the daily partitions definition.
pub fn project_files(project: &Project, start_date: &str, policy: BackfillPolicy) -> Result<Vec<(String, Vec<u8>)>> {
    // A project's files passed the import filter, but a path that reached a project some other
    // way must still never be written outside `analytics/`.
    if let Some(path) = project.files.0.keys().find(|path| !ProjectFiles::wants(path)) {
        return Err(Error::project(path.as_str(), "cannot be exported: not a path inside a dbt project"));
    }
    let profile = profile_name(project)?;
    let mut files: Vec<(String, String)> =
        project.files.0.iter().map(|(path, text)| (format!("analytics/{path}"), text.clone())).collect();
    // What the export writes itself replaces the project's copy (a re-imported export has one):
    // a zip cannot hold one path twice.
    let mut written: Vec<(String, String)> = vec![
        (
            "analytics/profiles.yml".into(),
            format!(
                "{profile}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: warehouse.duckdb\n      threads: 1\n"
            ),
        ),
        ("analytics/packages.yml".into(), "packages:\n  - local: dbt_utils\n".into()),
        ("analytics/load_raw.py".into(), LOAD_RAW.into()),
        ("analytics/taxi_zones.csv".into(), BUILTIN_ZONES.into()),
        ("orchestration/definitions.py".into(), DEFINITIONS.replace("{{START_DATE}}", start_date).replace("{{BACKFILL_POLICY}}", policy.python())),
        ("README.md".into(), README.replace("{{NAME}}", &project.name)),
    ];
    // Backfill's dbt_utils as a local package: dbt runs the same macros.
    written.extend(builtin_dbt_utils().0.into_iter().map(|(path, text)| (format!("analytics/dbt_utils/{path}"), text)));
    files.retain(|(path, _)| !written.iter().any(|(own, _)| own == path));
    files.extend(written);
    Ok(files.into_iter().map(|(path, text)| (path, text.into_bytes())).collect())
}

/// The project as a zip archive. Entries are stored, not compressed: exported projects are
/// small text files, and every unzip tool reads stored entries.
pub fn project_zip(project: &Project, start_date: &str, policy: BackfillPolicy) -> Result<Vec<u8>> {
    let failed = |e: zip::result::ZipError| Error::project("the exported zip", e.to_string());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o644);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, bytes) in project_files(project, start_date, policy)? {
        zip.start_file(path.as_str(), options).map_err(failed)?;
        zip.write_all(&bytes).map_err(|e| Error::project(path.as_str(), e.to_string()))?;
    }
    Ok(zip.finish().map_err(failed)?.into_inner())
}

/// The `profile:` dbt_project.yml names (dbt's default: the project's name).
fn profile_name(project: &Project) -> Result<String> {
    let Some(text) = project.files.0.get("dbt_project.yml") else { return Ok(project.name.clone()) };
    let yaml = crate::dbt::project::yaml::parse("dbt_project.yml", text)?;
    Ok(yaml.get("profile").and_then(|p| p.as_str()).unwrap_or(&project.name).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::builtin::{LESSON, builtin};

    #[test]
    fn the_lesson_exports_as_a_dbt_project_with_its_orchestrator() {
        let project = builtin(LESSON).unwrap_or_else(|e| panic!("{e}"));
        let files = project_files(&project, "2023-03-01", BackfillPolicy::SingleRun).unwrap_or_else(|e| panic!("{e}"));
        let text = |path: &str| {
            files
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| panic!("{path} missing"))
        };
        assert!(text("analytics/models/marts/daily_metrics.sql").contains("between '{{ var('min_date') }}'"));
        assert!(text("analytics/profiles.yml").starts_with("analytics:\n"));
        assert!(text("orchestration/definitions.py").contains("DailyPartitionsDefinition(start_date=\"2023-03-01\")"));
        assert!(text("orchestration/definitions.py").contains("backfill_policy=BackfillPolicy.single_run(),"));
        let per_partition = project_files(&project, "2023-03-01", BackfillPolicy::RunPerPartition).unwrap_or_default();
        let definitions = per_partition.iter().find(|(p, _)| p == "orchestration/definitions.py").map(|(_, b)| String::from_utf8_lossy(b));
        assert!(definitions.is_some_and(|d| d.contains("backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),")));
        assert!(text("README.md").starts_with("# analytics: exported from Backfill"));
        let zip = project_zip(&project, "2023-03-01", BackfillPolicy::SingleRun).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zip.get(..4), Some(&b"PK\x03\x04"[..]));
    }

    #[test]
    fn export_never_writes_a_path_outside_the_project() {
        let mut project = builtin(LESSON).unwrap_or_else(|e| panic!("{e}"));
        for path in ["../../.bashrc.sql", "/etc/cron.d/x.sql", "models/run.py", "C:/x.sql"] {
            let mut planted = project.clone();
            planted.files.insert(path, "select 1");
            let error = project_zip(&planted, "2023-03-01", BackfillPolicy::SingleRun).expect_err(path);
            assert_eq!(error, Error::project(path, "cannot be exported: not a path inside a dbt project"));
        }
        project.files.insert("models/extra.sql", "select 1");
        // A re-imported export holds the files the export writes itself: one of each is written.
        project.files.insert("dbt_utils/dbt_project.yml", "name: edited\n");
        project.files.insert("taxi_zones.csv", "LocationID,Borough\n");
        let files = project_files(&project, "2023-03-01", BackfillPolicy::SingleRun).unwrap_or_else(|e| panic!("{e}"));
        assert!(files.iter().any(|(path, _)| path == "analytics/models/extra.sql"));
        let zones: Vec<&[u8]> = files.iter().filter(|(path, _)| path == "analytics/taxi_zones.csv").map(|(_, b)| b.as_slice()).collect();
        assert_eq!(zones, [BUILTIN_ZONES.as_bytes()]);
        let zip = project_zip(&project, "2023-03-01", BackfillPolicy::SingleRun).unwrap_or_else(|e| panic!("{e}"));
        let reread = crate::dbt::import::from_zip("again.zip", &zip).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reread.0.get("models/extra.sql").map(String::as_str), Some("select 1"));
    }

    #[test]
    fn an_exported_project_imports_as_the_same_project() {
        let lesson = builtin(LESSON).unwrap_or_else(|e| panic!("{e}"));
        let zip = project_zip(&lesson, "2023-03-01", BackfillPolicy::SingleRun).unwrap_or_else(|e| panic!("{e}"));
        let files = crate::dbt::import::from_zip("backfill-dbt-project.zip", &zip).unwrap_or_else(|e| panic!("{e}"));
        assert!(files.0.contains_key("models/marts/daily_metrics.sql"));
        // The root is analytics/, not its local package analytics/dbt_utils/.
        assert_eq!(files.0.get("dbt_project.yml"), lesson.files.0.get("dbt_project.yml"));
        let imported = files.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(imported.models.keys().collect::<Vec<_>>(), lesson.models.keys().collect::<Vec<_>>());
        assert_eq!(imported.model("daily_metrics").map(|m| &m.sql), lesson.model("daily_metrics").map(|m| &m.sql));
    }
}
