//! The chart's time travel: the slider's stops (the runs that changed `daily_metrics`, oldest
//! first; the last one is "now"), the run shown, the table as it was right after it, and the
//! days that run rewrote.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use crate::course::lesson::MODEL;
use crate::course::time_travel;
use crate::dbt::history::RunRecord;
use crate::dbt::table_diff::KeyedRows;
use crate::view::chart::{self, DailyPoint};
use crate::view::protocol::Daily;

#[derive(Debug, Clone, PartialEq)]
pub struct Travel {
    pub stops: Vec<RunRecord>,
    /// Which stop is shown.
    pub index: usize,
    /// The table as it was after the shown run, when that is not the latest.
    pub rows: Option<KeyedRows>,
    /// The chart's points: the snapshot's, or those of `rows`.
    pub points: Vec<DailyPoint>,
    /// The days the shown run rewrote.
    pub touched: BTreeSet<NaiveDate>,
}

impl Travel {
    /// The chart of `daily` after `runs`, with the slider on the run `chosen` (`None`, or a run
    /// that is no longer a stop: now).
    pub fn of(daily: &Daily, runs: &[RunRecord], chosen: Option<u64>) -> Travel {
        let stops: Vec<RunRecord> = time_travel::stops(runs, MODEL).into_iter().cloned().collect();
        let last = stops.len().saturating_sub(1);
        let index = chosen.and_then(|id| stops.iter().position(|r| r.id == id)).unwrap_or(last);
        let rows =
            stops.get(index).filter(|_| index < last).and_then(|run| time_travel::rows_after(daily.rows.as_ref()?, runs, MODEL, run.id));
        let points = match &rows {
            Some(rows) => chart::daily_points(rows).into_iter().filter(|p| daily.days.contains(&p.date)).collect(),
            None => daily.points.clone(),
        };
        let touched = stops
            .get(index)
            .map(|run| time_travel::written_rows(run, MODEL).into_iter().filter_map(chart::row_date).collect())
            .unwrap_or_default();
        Travel { stops, index, rows, points, touched }
    }

    /// Whether an earlier run than the latest is shown.
    pub fn travelling(&self) -> bool {
        self.index + 1 < self.stops.len()
    }

    pub fn shown(&self) -> Option<&RunRecord> {
        self.stops.get(self.index)
    }

    /// The run to choose for the slider at `index`: `None` at the last stop, which follows new runs.
    pub fn choice(&self, index: usize) -> Option<u64> {
        (index + 1 < self.stops.len()).then(|| self.stops.get(index).map(|r| r.id)).flatten()
    }

    /// The slider's caption.
    pub fn label(&self) -> String {
        let when = if self.travelling() { "As it was after" } else { "Now: after" };
        self.shown().map(|r| format!("{when} run {}: {}", r.id, r.command)).unwrap_or_default()
    }
}
