//! Daily partitions, as the lesson's orchestrator defines them: each day is a partition; running
//! it passes `min_date` = the day and `max_date` = the next day to the incremental models.
//! The ledger remembers what happened to each day and, through fingerprints of the raw trips
//! of the days a run read, notices when source rows changed afterwards (stale).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use chrono::{Days, Months, NaiveDate};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, Int32Type, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};

use crate::dbt::request::BuildRequest;
use crate::dbt::request::Vars;
use crate::error::{Error, Result};
use crate::sources::ingest::parse_month;
use crate::sql::warehouse::{Table, typed_column};

const DAY_FORMAT: &str = "%Y-%m-%d";

/// Days from `start` up to, not including, `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyPartitions {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DailyPartitions {
    /// Every day of the months (`YYYY-MM`) from the first to the last of `months`; `None`
    /// without a valid month.
    pub fn of_months<'a>(months: impl IntoIterator<Item = &'a str>) -> Option<DailyPartitions> {
        let months: Vec<NaiveDate> = months.into_iter().filter_map(|m| parse_month(m).ok()).collect();
        let start = *months.iter().min()?;
        let end = months.iter().max()?.checked_add_months(Months::new(1))?;
        Some(DailyPartitions { start, end })
    }

    /// How many days (partitions) there are.
    pub fn day_count(&self) -> u64 {
        u64::try_from((self.end - self.start).num_days()).unwrap_or(0)
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.start.iter_days().take_while(|d| d < &self.end)
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day < self.end
    }

    /// The days a selection names: ranges (`START`, `START..END` or Dagster's `START...END`,
    /// inclusive) separated by commas, each checked against the definition; sorted, each once.
    pub fn select(&self, selection: &str) -> Result<Vec<NaiveDate>> {
        let mut days = std::collections::BTreeSet::new();
        for range in selection.split(',').map(str::trim) {
            let (from, to) = parse_range(range)?;
            if to < from {
                return Err(Error::Partition { partition: range.into(), message: "the range ends before it starts".into() });
            }
            for day in [from, to] {
                if !self.contains(day) {
                    return Err(Error::Partition {
                        partition: range.into(),
                        message: format!(
                            "{} is outside the partitions ({} to {})",
                            day.format(DAY_FORMAT),
                            self.start.format(DAY_FORMAT),
                            self.end.pred_opt().unwrap_or(self.end).format(DAY_FORMAT)
                        ),
                    });
                }
            }
            days.extend(from.iter_days().take_while(|d| d <= &to));
        }
        Ok(days.into_iter().collect())
    }
}

/// Sorted days as their runs of consecutive days, `(first, last)` each.
pub fn spans(days: &[NaiveDate]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &day in days {
        match out.last_mut() {
            Some((_, last)) if last.succ_opt() == Some(day) => *last = day,
            _ => out.push((day, day)),
        }
    }
    out
}

/// The partition runs over sorted days, `(first, last)` each: one per day, or with
/// `single_run` one per span of consecutive days (Dagster's `BackfillPolicy.single_run()`
/// runs each contiguous range once).
pub fn runs_of(days: &[NaiveDate], single_run: bool) -> Vec<(NaiveDate, NaiveDate)> {
    if single_run { spans(days) } else { days.iter().map(|&d| (d, d)).collect() }
}

/// Sorted days as a selection `select` reads back: `2023-03-04..2023-03-06, 2023-03-10`.
pub fn selection_text(days: &[NaiveDate]) -> String {
    spans(days).into_iter().map(|(first, last)| range_text(first, last)).collect::<Vec<_>>().join(", ")
}

/// `2023-03-04`: how days are written in ranges, vars and keys.
pub fn day_text(day: NaiveDate) -> String {
    day.format(DAY_FORMAT).to_string()
}

/// A range as partitions are selected: `START` for one day, else `START..END`.
pub fn range_text(first: NaiveDate, last: NaiveDate) -> String {
    if first == last { day_text(first) } else { format!("{}..{}", day_text(first), day_text(last)) }
}

/// The two ends of `START`, `START..END` or Dagster's `START...END`, as written (not checked
/// for order).
pub fn parse_range(range: &str) -> Result<(NaiveDate, NaiveDate)> {
    match range.split_once("...").or_else(|| range.split_once("..")) {
        Some((a, b)) => Ok((parse_day(a, range)?, parse_day(b, range)?)),
        None => parse_day(range, range).map(|day| (day, day)),
    }
}

fn parse_day(text: &str, range: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), DAY_FORMAT).map_err(|_| Error::Partition {
        partition: range.into(),
        message: format!("`{text}` is not a day (YYYY-MM-DD)"),
    })
}

/// The vars a run over the days `first..=last` passes: the orchestrator's partition window,
/// start inclusive, end exclusive.
pub fn window_vars(first: NaiveDate, last: NaiveDate) -> Vars {
    let end = last.checked_add_days(Days::new(1)).unwrap_or(last);
    let mut vars = Vars::new();
    vars.insert("min_date".into(), day_text(first).into());
    vars.insert("max_date".into(), day_text(end).into());
    vars
}

/// The build a partition run over the days `first..=last` is: the incremental models, with the
/// window vars.
pub fn run_request(models: &[String], first: NaiveDate, last: NaiveDate) -> BuildRequest {
    BuildRequest { select: models.join(" "), vars: window_vars(first, last), ..BuildRequest::default() }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PartitionStatus {
    Missing,
    Materialized { run_id: u64, at: String },
    /// Materialized, but the source rows it read have changed since.
    Stale { run_id: u64, at: String },
    Failed { run_id: u64, at: String, error: String },
}

impl PartitionStatus {
    pub fn name(&self) -> &'static str {
        match self {
            PartitionStatus::Missing => "missing",
            PartitionStatus::Materialized { .. } => "materialized",
            PartitionStatus::Stale { .. } => "stale",
            PartitionStatus::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    run_id: u64,
    at: String,
    error: Option<String>,
    /// Fingerprint of the source days the run read, at the time it ran.
    sources: u64,
}

/// What happened to each partition, keyed by day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionLedger {
    /// Keyed by `YYYY-MM-DD`, which sorts like the days.
    entries: BTreeMap<String, Entry>,
}

impl PartitionLedger {
    pub fn record_success(&mut self, day: NaiveDate, run_id: u64, at: &str, fingerprints: &DayFingerprints) {
        self.entries.insert(day_text(day), Entry { run_id, at: at.into(), error: None, sources: fingerprints.window(day) });
    }

    pub fn record_failure(&mut self, day: NaiveDate, run_id: u64, at: &str, error: &str) {
        self.entries.insert(day_text(day), Entry { run_id, at: at.into(), error: Some(error.into()), sources: 0 });
    }

    /// Forgets every partition (a full refresh rebuilds the table from scratch).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn status(&self, day: NaiveDate, fingerprints: &DayFingerprints) -> PartitionStatus {
        match self.entries.get(&day_text(day)) {
            None => PartitionStatus::Missing,
            Some(Entry { run_id, at, error: Some(error), .. }) => PartitionStatus::Failed {
                run_id: *run_id,
                at: at.clone(),
                error: error.clone(),
            },
            Some(Entry { run_id, at, sources, .. }) if *sources != fingerprints.window(day) => {
                PartitionStatus::Stale { run_id: *run_id, at: at.clone() }
            }
            Some(Entry { run_id, at, .. }) => PartitionStatus::Materialized { run_id: *run_id, at: at.clone() },
        }
    }
}

/// An order-independent hash of each day's rows of a source table, by its event time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayFingerprints(BTreeMap<String, u64>);

impl DayFingerprints {
    /// A daily partition reads its own day and the next (`between` includes `max_date`).
    pub fn window(&self, day: NaiveDate) -> u64 {
        let next = day.checked_add_days(Days::new(1)).unwrap_or(day);
        let get = |d: NaiveDate| self.0.get(&day_text(d)).copied().unwrap_or(0);
        get(day).rotate_left(1) ^ get(next)
    }

    /// The fingerprints of `table`'s rows by the day of their `event_time` (a microsecond
    /// timestamp column; a batch without it has no day to hash).
    pub fn of(table: Option<&Table>, event_time: &str) -> DayFingerprints {
        let mut days: BTreeMap<String, u64> = BTreeMap::new();
        let Some(table) = table else { return DayFingerprints(days) };
        for batch in table.batches.iter() {
            let Ok(times) = typed_column(batch, event_time, |c| c.as_primitive_opt::<TimestampMicrosecondType>()) else {
                continue;
            };
            for row in 0..batch.num_rows() {
                if times.is_null(row) {
                    continue;
                }
                let Some(day) = chrono::DateTime::from_timestamp_micros(times.value(row)) else { continue };
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                for column in batch.columns() {
                    hash_value(column.as_ref(), row, &mut hasher);
                }
                let entry = days.entry(day_text(day.date_naive())).or_default();
                *entry = entry.wrapping_add(hasher.finish());
            }
        }
        DayFingerprints(days)
    }
}

fn hash_value(column: &dyn Array, row: usize, hasher: &mut impl Hasher) {
    if column.is_null(row) {
        0u8.hash(hasher);
        return;
    }
    if let Some(values) = column.as_primitive_opt::<Int32Type>() {
        values.value(row).hash(hasher);
    } else if let Some(values) = column.as_primitive_opt::<Float64Type>() {
        values.value(row).to_bits().hash(hasher);
    } else if let Some(values) = column.as_primitive_opt::<TimestampMicrosecondType>() {
        values.value(row).hash(hasher);
    } else if let Some(values) = column.as_string_opt::<i32>() {
        values.value(row).hash(hasher);
    } else {
        1u8.hash(hasher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, DAY_FORMAT).unwrap_or_default()
    }

    #[test]
    fn ranges_are_inclusive_and_checked() {
        let def = DailyPartitions { start: day("2023-03-01"), end: day("2023-04-01") };
        assert_eq!(def.select("2023-03-04").ok(), Some(vec![day("2023-03-04")]));
        assert_eq!(def.select("2023-03-30..2023-03-31").map(|d| d.len()).ok(), Some(2));
        assert_eq!(def.select("2023-03-04...2023-03-10").map(|d| d.len()).ok(), Some(7), "Dagster's spelling");
        assert!(def.select("2023-03-04....2023-03-10").is_err());
        let err = def.select("2023-04-01").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("partition 2023-04-01: 2023-04-01 is outside the partitions (2023-03-01 to 2023-03-31)"));
        assert!(def.select("2023-3-4x").is_err());
        assert!(def.select("2023-03-05..2023-03-04").is_err());
    }

    #[test]
    fn selections_are_lists_of_ranges() {
        let def = DailyPartitions { start: day("2023-03-01"), end: day("2023-04-01") };
        let days = def.select("2023-03-10, 2023-03-04...2023-03-06,2023-03-05").unwrap_or_default();
        assert_eq!(days, vec![day("2023-03-04"), day("2023-03-05"), day("2023-03-06"), day("2023-03-10")]);
        assert_eq!(selection_text(&days), "2023-03-04..2023-03-06, 2023-03-10");
        assert_eq!(def.select(&selection_text(&days)).ok(), Some(days));
        let err = def.select("2023-03-04, 2023-04-02").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("partition 2023-04-02: 2023-04-02 is outside the partitions (2023-03-01 to 2023-03-31)"));
        assert!(def.select("2023-03-04,").is_err(), "an empty range is not a day");
        assert!(spans(&[]).is_empty());
    }

    #[test]
    fn window_vars_are_the_orchestrators() {
        let vars = window_vars(day("2023-03-04"), day("2023-03-04"));
        assert_eq!(serde_json::Value::Object(vars).to_string(), r#"{"min_date":"2023-03-04","max_date":"2023-03-05"}"#);
    }
}
