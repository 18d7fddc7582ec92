//! What a user did to a session, as data. Every engine operation that changes the state records
//! its action; replaying the actions on an empty state rebuilds the same project and tables.
//! Share links carry them; a restored session re-applies the project ones.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::dbt::request::DbtCommand;
use crate::dbt::request::Vars;
use crate::limits::quantity;
use crate::orchestrate::partitions::{parse_range, range_text};
use crate::sources::sample::SampleSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// A built-in project (`builtin:lesson`, …) replaces the project.
    Project { name: String },
    /// An imported project's files replace the project.
    ProjectFiles { files: BTreeMap<String, String> },
    /// One model's SQL replaced.
    Model { name: String, sql: String },
    /// A generated sample month.
    Sample { spec: SampleSpec },
    /// A trip file from the user's disk. Its rows are not kept here, so a replay skips it.
    File { name: String, month: String },
    /// Trips arriving late for a day already loaded.
    LateTrips { day: String, rows: usize, seed: u64 },
    /// `amount` taken off every fare of a day.
    CorrectFares { day: String, amount: f64 },
    Build {
        #[serde(default, skip_serializing_if = "DbtCommand::is_build")]
        command: DbtCommand,
        select: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        exclude: String,
        full_refresh: bool,
        vars: Vars,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_time_start: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_time_end: Option<String>,
    },
    /// Daily partitions, `2023-03-04` or `2023-03-01..2023-03-07`.
    Materialize { range: String, single_run: bool },
}

impl Action {
    /// Whether the action changes the project rather than the data.
    pub fn is_project(&self) -> bool {
        matches!(self, Action::Project { .. } | Action::ProjectFiles { .. } | Action::Model { .. })
    }

    /// A short description for messages and the share panel.
    pub fn describe(&self) -> String {
        match self {
            Action::Project { name } => format!("use project {name}"),
            Action::ProjectFiles { files } => format!("import a project of {} files", files.len()),
            Action::Model { name, .. } => format!("edit model {name}"),
            Action::Sample { spec } => format!("generate {} ({})", spec.month, quantity(spec.rows as u64, "trips")),
            Action::File { name, .. } => format!("load {name}"),
            Action::LateTrips { day, rows, .. } => format!("{} for {day}", quantity(*rows as u64, "late trips")),
            Action::CorrectFares { day, amount } => format!("fares of {day} corrected by -{amount}"),
            Action::Build { command, select, full_refresh, .. } => {
                let what = if select.is_empty() { "everything" } else { select.as_str() };
                format!("{} {what}{}", command.word(), if *full_refresh { " (full refresh)" } else { "" })
            }
            Action::Materialize { range, .. } => format!("materialize {range}"),
        }
    }
}

/// Appends `action` to `log`. Day-by-day partition runs of consecutive days are kept as one
/// range (replayed as one run per day), so a backfill stays one action long.
pub fn record(log: &mut Vec<Action>, action: Action) {
    if let (Some(Action::Materialize { range, single_run }), Action::Materialize { range: next, .. }) = (log.last_mut(), &action)
        && let ((Some(first), Some(last)), (Some(day), Some(day_end))) = (bounds(range), bounds(next))
        && day == day_end
        && last + Duration::days(1) == day
        && (!*single_run || first == last)
    {
        *range = range_text(first, day);
        *single_run = false;
        return;
    }
    log.push(action);
}

fn bounds(range: &str) -> (Option<NaiveDate>, Option<NaiveDate>) {
    parse_range(range).map_or((None, None), |(first, last)| (Some(first), Some(last)))
}

/// The data arrivals among `actions` (files, samples and edits of the raw trips): what a
/// comparison of strategies replays.
pub fn arrivals(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Sample { .. } | Action::File { .. } | Action::LateTrips { .. } | Action::CorrectFares { .. }))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn materialize(range: &str, single_run: bool) -> Action {
        Action::Materialize { range: range.into(), single_run }
    }

    #[test]
    fn consecutive_daily_runs_become_one_range() {
        let mut log = Vec::new();
        for day in ["2023-04-01", "2023-04-02", "2023-04-03"] {
            record(&mut log, materialize(day, true));
        }
        assert_eq!(log, vec![materialize("2023-04-01..2023-04-03", false)]);
        record(&mut log, materialize("2023-04-05", true));
        assert_eq!(log.len(), 2, "a gap starts a new action");
        let mut single = vec![materialize("2023-04-01..2023-04-03", true)];
        record(&mut single, materialize("2023-04-04", true));
        assert_eq!(single.len(), 2, "one run over a range is not extended with per-day runs");
    }

    #[test]
    fn actions_read_as_tagged_json() {
        let action = Action::LateTrips { day: "2023-03-15".into(), rows: 400, seed: 1 };
        let json = serde_json::to_string(&action).expect("serializable");
        assert_eq!(json, r#"{"do":"late_trips","day":"2023-03-15","rows":400,"seed":1}"#);
        assert_eq!(serde_json::from_str::<Action>(&json).expect("round trip"), action);
    }
}
