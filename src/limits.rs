//! Every bound on what a user, a dropped file or a share link controls, in one place (the
//! README's "Limits" table lists them). A share link is written by a stranger and replayed in
//! the receiver's tab, so nothing it carries may ask for unbounded time or memory; an input over
//! a limit fails with [`Error::Limit`], which says which limit, where, and how to go further.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Limit {
    /// Rows one generated sample month may have (the generator, a link's recipe).
    SampleRows,
    /// Rows all the sample recipes and late trips of one share link generate together.
    LinkRows,
    /// Actions one share link replays.
    LinkActions,
    /// Partitions one share link materializes and microbatch batches it runs, all its actions
    /// together: each is a query, a few milliseconds to a second in the tab.
    LinkPartitions,
    /// Bytes a share link's fragment inflates to.
    LinkBytes,
    /// Recent scratchpad queries the page keeps, and a share link carries.
    RecentQueries,
    /// Late trips one action may add to a day.
    LateTrips,
    /// Bytes of one trip file.
    TripFileBytes,
    /// Files in one imported (or linked) project.
    ProjectFiles,
    /// Bytes of one imported project: its files together, unpacked (and the archive it came in).
    ProjectBytes,
    /// Bytes of one YAML file of a project.
    YamlBytes,
    /// Bytes one YAML file's values take with its aliases expanded (each value counts one byte
    /// more than its text): anchors and aliases can make a small file expand a million-fold.
    YamlExpanded,
    /// Template instructions one model may execute when compiled (minijinja's fuel).
    TemplateFuel,
    /// Bytes of one model's compiled SQL.
    RenderedBytes,
    /// Queries one model's compile runs for its template (`run_query`, `statement`, the
    /// adapter's columns): each is answered, then the model rendered again.
    TemplateQueries,
    /// Rows one of those queries hands the template.
    TemplateQueryRows,
    /// Memory one query may hold in sorts, joins and aggregates.
    QueryMemory,
    /// Nesting depth of one SQL statement.
    SqlDepth,
    /// Days in the daily partitions definition (first to last day of trips).
    PartitionDays,
    /// Batches one microbatch run may have.
    MicrobatchBatches,
}

impl Limit {
    /// Every limit, in the order the README lists them.
    pub const ALL: [Limit; 18] = [
        Limit::SampleRows,
        Limit::LinkRows,
        Limit::LinkActions,
        Limit::LinkBytes,
        Limit::RecentQueries,
        Limit::LateTrips,
        Limit::TripFileBytes,
        Limit::ProjectFiles,
        Limit::ProjectBytes,
        Limit::YamlBytes,
        Limit::TemplateFuel,
        Limit::RenderedBytes,
        Limit::TemplateQueries,
        Limit::TemplateQueryRows,
        Limit::QueryMemory,
        Limit::SqlDepth,
        Limit::PartitionDays,
        Limit::MicrobatchBatches,
    ];

    pub const fn max(self) -> u64 {
        match self {
            Limit::SampleRows => 5_000_000,
            Limit::LinkRows => 10_000_000,
            Limit::LinkActions => 500,
            Limit::LinkPartitions => 2_000,
            Limit::LinkBytes => 4 << 20,
            Limit::RecentQueries => 20,
            Limit::LateTrips => 100_000,
            Limit::TripFileBytes => 1 << 30,
            Limit::ProjectFiles => 2_000,
            Limit::ProjectBytes => 64 << 20,
            Limit::YamlBytes => 1 << 20,
            Limit::YamlExpanded => 2 << 20,
            Limit::TemplateFuel => 10_000_000,
            Limit::RenderedBytes => 4 << 20,
            Limit::TemplateQueries => 100,
            Limit::TemplateQueryRows => 10_000,
            Limit::QueryMemory => 2 << 30,
            Limit::SqlDepth => 200,
            Limit::PartitionDays => 3_660,
            Limit::MicrobatchBatches => 10_000,
        }
    }

    /// What is counted, and its unit.
    pub const fn what(self) -> (&'static str, &'static str) {
        match self {
            Limit::SampleRows => ("a generated month", "rows"),
            Limit::LinkRows => ("the sample months and late trips of one share link", "rows"),
            Limit::LinkActions => ("one share link", "actions"),
            Limit::LinkPartitions => ("the partitions and microbatch batches one share link runs", "partitions"),
            Limit::LinkBytes => ("one share link, inflated", "bytes"),
            Limit::RecentQueries => ("the scratchpad's recent queries (kept, and carried by a link)", "queries"),
            Limit::LateTrips => ("late trips added at once", "rows"),
            Limit::TripFileBytes => ("one trip file", "bytes"),
            Limit::ProjectFiles => ("one project", "files"),
            Limit::ProjectBytes => ("one project", "bytes"),
            Limit::YamlBytes => ("one YAML file", "bytes"),
            Limit::YamlExpanded => ("one YAML file with its aliases expanded", "bytes"),
            Limit::TemplateFuel => ("compiling one model", "template steps"),
            Limit::RenderedBytes => ("one model's compiled SQL", "bytes"),
            Limit::TemplateQueries => ("the queries compiling one model runs", "queries"),
            Limit::TemplateQueryRows => ("the result of one query a template runs", "rows"),
            Limit::QueryMemory => ("one query's sorts, joins and aggregates", "bytes"),
            Limit::SqlDepth => ("one SQL statement's nesting", "levels"),
            Limit::PartitionDays => ("the daily partitions (first to last day of trips)", "days"),
            Limit::MicrobatchBatches => ("one microbatch run", "batches"),
        }
    }

    /// How a user goes further than Backfill does.
    pub const fn further(self) -> &'static str {
        match self {
            Limit::SampleRows | Limit::LinkRows | Limit::TripFileBytes | Limit::QueryMemory => {
                "for more data, export the project and run it in dbt-duckdb"
            }
            Limit::LinkActions | Limit::LinkBytes | Limit::LinkPartitions => "share a shorter session, or export the project",
            Limit::RecentQueries => "the oldest is forgotten first; keep a query you need in a model",
            Limit::LateTrips => "add them in smaller steps",
            Limit::ProjectFiles | Limit::ProjectBytes | Limit::YamlBytes => {
                "import only the dbt project (models, macros, seeds and YAML), not its data or build output"
            }
            Limit::YamlExpanded => "write the repeated YAML out instead of using anchors and aliases",
            Limit::TemplateFuel | Limit::RenderedBytes | Limit::TemplateQueries | Limit::SqlDepth => {
                "simplify the model, or run it in dbt-duckdb"
            }
            Limit::TemplateQueryRows => "have the query return fewer rows (aggregate, or add a limit)",
            Limit::PartitionDays => "load trips from fewer years",
            Limit::MicrobatchBatches => "narrow --event-time-start/--event-time-end or use a larger batch_size",
        }
    }

    /// The maximum as a person reads it: `5,000,000 rows`, `64 MiB`.
    pub fn max_text(self) -> String {
        quantity(self.max(), self.what().1)
    }

    /// Fails when `value` is over this limit; `place` says where it was found.
    pub fn check(self, value: u64, place: impl Into<String>) -> Result<()> {
        if value > self.max() {
            return Err(self.exceeded(Some(value), place));
        }
        Ok(())
    }

    /// The error for an input over this limit (`value` when it is known).
    pub fn exceeded(self, value: Option<u64>, place: impl Into<String>) -> Error {
        Error::Limit { limit: self, place: place.into(), value }
    }

    /// The message of [`Error::Limit`].
    pub fn message(self, place: &str, value: Option<u64>) -> String {
        let (what, unit) = self.what();
        let found = value.map(|v| format!("{} is ", quantity(v, unit))).unwrap_or_default();
        format!("{place}: {found}over Backfill's limit for {what} ({}); {}", self.max_text(), self.further())
    }
}

/// `value` in `unit`, bytes in whole MiB or GiB where they are, numbers with thousands separators.
pub fn quantity(value: u64, unit: &str) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    match unit {
        "bytes" if value >= GIB && value.is_multiple_of(GIB) => format!("{} GiB", value / GIB),
        "bytes" if value >= MIB && value.is_multiple_of(MIB) => format!("{} MiB", value / MIB),
        _ => {
            let digits = value.to_string();
            let mut grouped = String::new();
            for (i, digit) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(digit);
            }
            format!("{grouped} {unit}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_limit_the_place_and_a_way_on() {
        assert!(Limit::SampleRows.check(5_000_000, "x").is_ok());
        let error = Limit::SampleRows.check(100_000_000, "step 2 of the link (sample 2023-03)").unwrap_err();
        assert_eq!(
            error.to_string(),
            "step 2 of the link (sample 2023-03): 100,000,000 rows is over Backfill's limit for a generated month \
             (5,000,000 rows); for more data, export the project and run it in dbt-duckdb"
        );
        let fuel = Limit::TemplateFuel.exceeded(None, "models/a.sql").to_string();
        assert_eq!(
            fuel,
            "models/a.sql: over Backfill's limit for compiling one model (10,000,000 template steps); \
             simplify the model, or run it in dbt-duckdb"
        );
        assert_eq!(Limit::QueryMemory.max_text(), "2 GiB");
        assert_eq!(Limit::LinkActions.max_text(), "500 actions");
    }

    /// The README's table is the user's view of these limits: it lists each one as it is.
    #[test]
    fn the_readme_lists_every_limit() {
        let readme = include_str!("../README.md");
        for limit in Limit::ALL {
            let row = format!("| {} | {} | {} |", limit.what().0, limit.max_text(), limit.further());
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
    }
}
