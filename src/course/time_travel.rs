//! A table as it was after any earlier run: the current rows with the diff of every later run
//! undone, newest first. Runs keep their diffs (see [`crate::dbt::table_diff`]), so nothing is
//! recomputed and no old table is stored.

use crate::dbt::history::{RunRecord, RunStatus};
use crate::dbt::table_diff::{KeyedRows, Row};

/// `model`'s rows right after run `run_id`; `None` if a later run changed the model without
/// keeping a diff (a table too large to keep row by row).
pub fn rows_after(current: &KeyedRows, runs: &[RunRecord], model: &str, run_id: u64) -> Option<KeyedRows> {
    let mut rows = current.clone();
    for run in runs.iter().rev().filter(|r| r.id > run_id && r.status == RunStatus::Success) {
        if let Some(model_run) = run.models.iter().find(|m| m.name == model) {
            model_run.diff.as_ref()?.undo(&mut rows);
        }
    }
    Some(rows)
}

/// The successful runs that changed `model`, oldest first: the stops of a time-travel slider.
pub fn stops<'a>(runs: &'a [RunRecord], model: &str) -> Vec<&'a RunRecord> {
    runs.iter().filter(|r| r.status == RunStatus::Success && r.models.iter().any(|m| m.name == model)).collect()
}

/// The rows of `model` a run wrote: added, changed, or rewritten with the values they had.
pub fn written_rows<'a>(run: &'a RunRecord, model: &str) -> Vec<&'a Row> {
    let Some(diff) = run.models.iter().find(|m| m.name == model).and_then(|m| m.diff.as_ref()) else { return Vec::new() };
    diff.added.iter().chain(diff.changed.iter().map(|c| &c.new)).chain(diff.rewritten.iter()).collect()
}
