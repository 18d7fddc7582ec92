//! What a dbt invocation asks for: the command, the selection, `--vars`, the event-time
//! range, and the window of one microbatch batch. At the bottom of `dbt/`: templates, runs
//! and the history all read these, and none of them needs another to do so.

use chrono::NaiveDateTime;

use crate::dbt::project::BatchSize;

/// `--vars` over a project's `vars:`: names to JSON values.
pub type Vars = serde_json::Map<String, serde_json::Value>;

/// Which dbt command a request is: what of the selection it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbtCommand {
    /// Seeds, models and snapshots, then their tests.
    #[default]
    Build,
    /// Models only.
    Run,
    /// Seeds only.
    Seed,
    /// Snapshots only.
    Snapshot,
    /// The tests of the selection, on the tables as they are.
    Test,
}

impl DbtCommand {
    pub fn word(self) -> &'static str {
        match self {
            DbtCommand::Build => "build",
            DbtCommand::Run => "run",
            DbtCommand::Seed => "seed",
            DbtCommand::Snapshot => "snapshot",
            DbtCommand::Test => "test",
        }
    }

    pub fn is_build(&self) -> bool {
        *self == DbtCommand::Build
    }
}

/// What to build, as `dbt build` takes it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildRequest {
    /// `dbt build`, `run`, `seed` or `test`.
    #[serde(default, skip_serializing_if = "DbtCommand::is_build")]
    pub command: DbtCommand,
    /// dbt selection syntax (`dbt::run::select`); empty builds everything.
    pub select: String,
    /// dbt's `--exclude`, the same syntax.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exclude: String,
    pub full_refresh: bool,
    /// dbt's `--fail-fast`: the first failure stops the run (otherwise only what reads the
    /// failed node is skipped, and the run fails at the end).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_fast: bool,
    pub vars: Vars,
    /// dbt's `--event-time-start/--event-time-end`: the batches microbatch models run.
    pub event_time: EventTimeRange,
}

/// One batch: `start <= event_time < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchWindow {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl BatchWindow {
    /// The predicate dbt renders for a relation filtered to this batch.
    pub fn predicate(&self, column: &str) -> String {
        format!(
            "{column} >= '{}' and {column} < '{}'",
            utc_text(self.start),
            utc_text(self.end)
        )
    }

    /// dbt's batch id, e.g. `2023-03-04` for a daily batch.
    pub fn label(&self, size: BatchSize) -> String {
        let format = match size {
            BatchSize::Hour => "%Y-%m-%dT%H",
            BatchSize::Day => "%Y-%m-%d",
            BatchSize::Month => "%Y-%m",
            BatchSize::Year => "%Y",
        };
        self.start.format(format).to_string()
    }
}

/// What the run asked for: dbt's `--event-time-start` / `--event-time-end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventTimeRange {
    #[serde(with = "crate::serde_dates::optional_time")]
    pub start: Option<NaiveDateTime>,
    #[serde(with = "crate::serde_dates::optional_time")]
    pub end: Option<NaiveDateTime>,
}

/// A time as dbt renders it in a batch's predicate.
pub(crate) fn utc_text(time: NaiveDateTime) -> String {
    format!("{}+00:00", time.format("%Y-%m-%d %H:%M:%S"))
}
