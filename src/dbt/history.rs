//! Run history: what each run did, in terms a learner can replay in dbt — the equivalent
//! command, the vars, each model's compiled SQL, the rows it touched and how long it took.

use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::dbt::request::BuildRequest;
use crate::dbt::request::Vars;
use crate::dbt::table_diff::TableDiff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Success,
    Failed,
    /// A data test that found failing rows with severity `warn` (or under its `error_if`).
    Warn,
    /// Not run: something it reads failed.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub started_at: String,
    /// The dbt command that does the same, e.g.
    /// `dbt build --select daily_metrics --vars '{"min_date": "2023-03-04", "max_date": "2023-03-05"}'`.
    pub command: String,
    pub vars: Vars,
    /// The daily partitions this run materialized (`2023-03-04`), if it was a partition run.
    pub partitions: Vec<String>,
    pub status: RunStatus,
    pub error: Option<String>,
    pub models: Vec<ModelRun>,
    pub tests: Vec<TestRun>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRun {
    pub name: String,
    pub materialization: String,
    /// The incremental strategy, when the model ran incrementally.
    pub strategy: Option<String>,
    pub is_incremental: bool,
    /// The SQL that ran (a microbatch model's first batch).
    pub compiled_sql: String,
    /// A microbatch model's batches, by dbt's batch id (`2023-03-04`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<String>,
    pub rows_inserted: usize,
    pub rows_updated: usize,
    pub rows_deleted: usize,
    /// Rows in the relation after the run (0 for views).
    pub rows_after: usize,
    /// DataFusion's physical plan of the model query with per-operator metrics (output rows,
    /// time); a microbatch model's first batch.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plan: String,
    /// Row by row what the run did to the table, when it is small enough to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<TableDiff>,
    pub duration_ms: u64,
    /// Where `duration_ms` went, phase by phase.
    #[serde(default, skip_serializing_if = "Phases::is_empty")]
    pub phases: Phases,
    pub status: RunStatus,
    pub error: Option<String>,
}

/// Where a model's run spent its time, in the order the phases first ran: `compile` (its
/// template, again when incremental), `plan` (DataFusion: tables registered, SQL parsed,
/// optimized), `execute`, `merge` (the incremental strategy), `diff` (the rows shown changed).
/// A microbatch model's batches add up. Microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases(pub Vec<(String, u64)>);

impl Phases {
    /// Adds the time since `start` to `phase`; returns the time it ended, where the next starts.
    pub fn lap(&mut self, phase: &str, start: Instant) -> Instant {
        let now = Instant::now();
        let micros = u64::try_from(now.duration_since(start).as_micros()).unwrap_or(u64::MAX);
        match self.0.iter_mut().find(|(name, _)| name == phase) {
            Some((_, total)) => *total = total.saturating_add(micros),
            None => self.0.push((phase.to_string(), micros)),
        }
        now
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `compile 0.4 ms · plan 31.0 ms · execute 12.2 ms`
    pub fn text(&self) -> String {
        let phases: Vec<String> = self.0.iter().map(|(name, micros)| format!("{name} {:.1} ms", *micros as f64 / 1000.0)).collect();
        phases.join(" · ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRun {
    pub name: String,
    pub failures: usize,
    pub status: RunStatus,
}

impl TestRun {
    /// As dbt reports it: `pass`, `warn: 3 failing`, `fail: 3 failing`.
    pub fn outcome(&self) -> String {
        match self.status {
            RunStatus::Success => "pass".to_string(),
            RunStatus::Warn => format!("warn: {} failing", self.failures),
            RunStatus::Failed => format!("fail: {} failing", self.failures),
            RunStatus::Skipped => "skipped".to_string(),
        }
    }
}

impl ModelRun {
    /// A model or seed not run because something it reads failed.
    pub fn skipped(name: &str, materialization: &str) -> ModelRun {
        ModelRun {
            name: name.to_string(),
            materialization: materialization.to_string(),
            strategy: None,
            is_incremental: false,
            compiled_sql: String::new(),
            batches: Vec::new(),
            rows_inserted: 0,
            rows_updated: 0,
            rows_deleted: 0,
            rows_after: 0,
            plan: String::new(),
            diff: None,
            duration_ms: 0,
            phases: Phases::default(),
            status: RunStatus::Skipped,
            error: None,
        }
    }
}

/// The dbt command line that reproduces a run.
pub fn dbt_command(request: &BuildRequest) -> String {
    let mut command = format!("dbt {}", request.command.word());
    if !request.select.is_empty() {
        command.push_str(&format!(" --select {}", request.select));
    }
    if !request.exclude.is_empty() {
        command.push_str(&format!(" --exclude {}", request.exclude));
    }
    if request.full_refresh {
        command.push_str(" --full-refresh");
    }
    if request.fail_fast {
        command.push_str(" --fail-fast");
    }
    if !request.vars.is_empty() {
        command.push_str(&format!(" --vars '{}'", vars_json(&request.vars)));
    }
    let flags = [("--event-time-start", request.event_time.start), ("--event-time-end", request.event_time.end)];
    for (flag, time) in flags {
        if let Some(time) = time {
            command.push_str(&format!(" {flag} '{}'", time.format("%Y-%m-%d %H:%M:%S")));
        }
    }
    command
}

/// `{"min_date": "2023-03-04", "max_date": "2023-03-05"}`: the spacing dbt users write.
pub fn vars_json(vars: &Vars) -> String {
    let parts: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{}: {}", serde_json::Value::String(k.clone()), v))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_add_up_in_the_order_they_first_ran() {
        let start = Instant::now();
        let mut phases = Phases::default();
        let planned = phases.lap("plan", start);
        let executed = phases.lap("execute", planned);
        phases.lap("plan", executed);
        let names: Vec<&str> = phases.0.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["plan", "execute"]);
        let phases = Phases(vec![("compile".into(), 400), ("execute".into(), 12_250)]);
        assert_eq!(phases.text(), "compile 0.4 ms · execute 12.2 ms");
    }

    #[test]
    fn command_reads_as_dbt_takes_it() {
        let mut vars = Vars::new();
        vars.insert("min_date".into(), "2023-03-04".into());
        vars.insert("max_date".into(), "2023-03-05".into());
        assert_eq!(
            dbt_command(&BuildRequest { select: "daily_metrics".into(), vars, ..BuildRequest::default() }),
            r#"dbt build --select daily_metrics --vars '{"min_date": "2023-03-04", "max_date": "2023-03-05"}'"#
        );
    }
}
