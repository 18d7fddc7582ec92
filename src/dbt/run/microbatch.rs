//! dbt's microbatch strategy: a model configured with `event_time`, `batch_size` and `begin`
//! runs once per time batch. Each batch sees only its slice of every parent that declares an
//! `event_time`, deletes its slice of the target and inserts the new one (dbt-duckdb's
//! delete+insert on `event_time`). The batch arithmetic follows dbt-core's `MicrobatchBuilder`.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::dbt::project::{BatchSize, ModelConfig};
use crate::dbt::request::{BatchWindow, EventTimeRange, utc_text};
use crate::error::Error;
use crate::limits::Limit;

/// The batches one run of a microbatch model covers. A first run (or full refresh) starts at
/// `begin`; a later run goes `lookback` batches back from the end; the end is the requested
/// one or `now`, rounded up to a batch boundary. Errors name the model and its `file`; times
/// past the dates chrono holds and runs of more than [`Limit::MicrobatchBatches`] batches are
/// refused before any batch is made.
pub fn batches(
    config: &ModelConfig,
    incremental: bool,
    range: EventTimeRange,
    now: NaiveDateTime,
    (model, file): (&str, &str),
) -> Result<Vec<BatchWindow>, Error> {
    let bad = |message: String| Error::project(file, format!("model {model}: {message}"));
    let size = config.batch_size.ok_or_else(|| bad("incremental_strategy microbatch needs batch_size".into()))?;
    let out_of_range = |time: NaiveDateTime| bad(format!("event time {} is past the dates Backfill can batch", utc_text(time)));
    let asked_end = range.end.unwrap_or(now);
    let end = ceiling(asked_end, size).ok_or_else(|| out_of_range(asked_end))?;
    let start = match range.start {
        Some(start) => truncate(start, size),
        None if !incremental => {
            let begin = config
                .begin
                .as_deref()
                .ok_or_else(|| bad("incremental_strategy microbatch needs begin (e.g. begin='2023-03-01')".into()))?;
            let begin = parse_time(begin).ok_or_else(|| bad(format!("config begin '{begin}' is not a date or timestamp")))?;
            truncate(begin, size)
        }
        None => {
            let lookback = i64::from(config.lookback) + i64::from(end == truncate(end, size));
            offset(end, size, -lookback).ok_or_else(|| out_of_range(end))?
        }
    };
    if start >= end {
        return Err(bad(format!("event time start {} is not before the end {}", utc_text(start), utc_text(end))));
    }
    let count = index(end, size).saturating_sub(index(start, size));
    Limit::MicrobatchBatches.check(u64::try_from(count).unwrap_or(u64::MAX), format!("{file} (model {model})"))?;
    let mut windows = Vec::new();
    let mut batch_start = start;
    loop {
        let batch_end = offset(batch_start, size, 1).ok_or_else(|| out_of_range(batch_start))?;
        if batch_end >= end {
            windows.push(BatchWindow { start: batch_start, end });
            return Ok(windows);
        }
        windows.push(BatchWindow { start: batch_start, end: batch_end });
        batch_start = batch_end;
    }
}

/// A date (`2023-03-01`) or a timestamp (`2023-03-01 06:00:00`, `T` allowed), as dbt accepts.
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_time(NaiveTime::MIN));
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// Python's `str()` of a UTC datetime, as dbt puts batch bounds into SQL.

fn truncate(time: NaiveDateTime, size: BatchSize) -> NaiveDateTime {
    let date = time.date();
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(date).and_time(NaiveTime::MIN);
    match size {
        BatchSize::Hour => date.and_hms_opt(time.hour(), 0, 0).unwrap_or(time),
        BatchSize::Day => date.and_time(NaiveTime::MIN),
        BatchSize::Month => day(date.year(), date.month(), 1),
        BatchSize::Year => day(date.year(), 1, 1),
    }
}

/// `time` rounded up to a batch boundary; `None` past the last date chrono holds.
fn ceiling(time: NaiveDateTime, size: BatchSize) -> Option<NaiveDateTime> {
    let truncated = truncate(time, size);
    if truncated == time { Some(time) } else { offset(truncated, size, 1) }
}

/// `time` truncated to its batch, then moved `count` batches; `None` past chrono's dates.
fn offset(time: NaiveDateTime, size: BatchSize, count: i64) -> Option<NaiveDateTime> {
    let start = truncate(time, size);
    match size {
        BatchSize::Hour => start.checked_add_signed(Duration::try_hours(count)?),
        BatchSize::Day => start.checked_add_signed(Duration::try_days(count)?),
        BatchSize::Month | BatchSize::Year => {
            let moved = index(start, size).checked_add(count)?;
            let (year, month0) = match size {
                BatchSize::Year => (moved, 0),
                _ => (moved.div_euclid(12), moved.rem_euclid(12)),
            };
            let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, u32::try_from(month0).ok()? + 1, 1)?;
            Some(date.and_time(NaiveTime::MIN))
        }
    }
}

/// Which batch `time` falls in, counted from a fixed origin: batches between two boundaries
/// are a subtraction, so a run's size is known before any batch is made.
fn index(time: NaiveDateTime, size: BatchSize) -> i64 {
    let date = time.date();
    let days = i64::from(date.num_days_from_ce());
    match size {
        BatchSize::Hour => days * 24 + i64::from(time.hour()),
        BatchSize::Day => days,
        BatchSize::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
        BatchSize::Year => i64::from(date.year()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::project::{ConfigValues, Strategy};

    fn config(size: &str, begin: &str, lookback: u64) -> ModelConfig {
        let mut values = ConfigValues::new();
        values.insert("materialized".into(), "incremental".into());
        values.insert("incremental_strategy".into(), "microbatch".into());
        values.insert("event_time".into(), "ordered_at".into());
        values.insert("batch_size".into(), size.into());
        values.insert("begin".into(), begin.into());
        values.insert("lookback".into(), lookback.into());
        let config = ModelConfig::resolve(&values).expect("valid config");
        assert_eq!(config.strategy(), Strategy::Microbatch);
        config
    }

    fn at(text: &str) -> NaiveDateTime {
        parse_time(text).expect("test time")
    }

    const PLACE: (&str, &str) = ("daily_metrics", "models/daily_metrics.sql");

    fn labels(windows: &[BatchWindow], size: BatchSize) -> Vec<String> {
        windows.iter().map(|w| w.label(size)).collect()
    }

    #[test]
    fn first_run_starts_at_begin_and_ends_at_now_rounded_up() {
        let config = config("day", "2023-03-01", 1);
        let windows = batches(&config, false, EventTimeRange::default(), at("2023-03-03 10:30"), PLACE).expect("batches");
        assert_eq!(labels(&windows, BatchSize::Day), ["2023-03-01", "2023-03-02", "2023-03-03"]);
        assert_eq!(windows[2].end, at("2023-03-04"));
    }

    #[test]
    fn later_runs_look_back_like_dbt() {
        // dbt: the end (a batch boundary) counts as a straddled checkpoint, so lookback 1 gives two batches.
        let config = config("day", "2023-03-01", 1);
        let windows = batches(&config, true, EventTimeRange::default(), at("2023-03-20 10:00"), PLACE).expect("batches");
        assert_eq!(labels(&windows, BatchSize::Day), ["2023-03-19", "2023-03-20"]);
    }

    #[test]
    fn explicit_range_and_month_batches() {
        let config = config("month", "2023-01-01", 1);
        let range = EventTimeRange { start: Some(at("2023-02-15")), end: Some(at("2023-04-02")) };
        let windows = batches(&config, true, range, at("2030-01-01"), PLACE).expect("batches");
        assert_eq!(labels(&windows, BatchSize::Month), ["2023-02", "2023-03", "2023-04"]);
        assert_eq!(windows[2].end, at("2023-05-01"));
        assert_eq!(
            windows[0].predicate("ordered_at"),
            "ordered_at >= '2023-02-01 00:00:00+00:00' and ordered_at < '2023-03-01 00:00:00+00:00'"
        );
    }

    #[test]
    fn months_wrap_across_years() {
        assert_eq!(offset(at("2023-11-20"), BatchSize::Month, 3), Some(at("2024-02-01")));
        assert_eq!(offset(at("2023-01-20"), BatchSize::Month, -1), Some(at("2022-12-01")));
        assert_eq!(offset(at("2023-01-20"), BatchSize::Year, -2), Some(at("2021-01-01")));
        assert_eq!(ceiling(at("2023-03-01"), BatchSize::Month), Some(at("2023-03-01")));
        assert_eq!(truncate(at("2023-03-01 17:45"), BatchSize::Hour), at("2023-03-01 17:00"));
    }

    #[test]
    fn missing_begin_is_an_error() {
        let mut config = config("day", "2023-03-01", 1);
        config.begin = None;
        let error = batches(&config, false, EventTimeRange::default(), at("2023-03-03"), PLACE).expect_err("needs begin");
        assert!(error.to_string().contains("begin"), "{error}");
    }

    #[test]
    fn event_times_at_the_ends_of_the_calendar_are_refused_not_panicked_on() {
        let last = NaiveDateTime::MAX;
        let first = NaiveDateTime::MIN;
        for size in ["hour", "day", "month", "year"] {
            let config = config(size, "2023-03-01", 3);
            let to_the_end = EventTimeRange { start: Some(at("2023-03-01")), end: Some(last) };
            let error = batches(&config, true, to_the_end, at("2023-03-02"), PLACE).expect_err("past the last date");
            assert!(error.to_string().starts_with("models/daily_metrics.sql: model daily_metrics: event time"), "{error}");
            // Looking back from the first date there is no batch to go to.
            let error = batches(&config, true, EventTimeRange::default(), first, PLACE).expect_err("before the first date");
            assert!(error.to_string().contains("past the dates Backfill can batch"), "{error}");
        }
    }

    #[test]
    fn a_run_of_too_many_batches_is_refused_before_any_is_made() {
        let config = config("hour", "2023-03-01", 1);
        let new_year = |year| NaiveDate::from_ymd_opt(year, 1, 1).map(|d| d.and_time(NaiveTime::MIN));
        let ages = EventTimeRange { start: new_year(-200_000), end: new_year(200_000) };
        let error = batches(&config, false, ages, at("2023-03-02"), PLACE).expect_err("400,000 years of hours");
        let Error::Limit { limit, value, .. } = &error else { panic!("{error}") };
        assert_eq!(*limit, Limit::MicrobatchBatches);
        assert!(value.is_some_and(|v| v > 3_000_000_000), "{error}");
        let limit = Limit::MicrobatchBatches.max();
        let config = self::config("day", "2023-03-01", 1);
        let start = at("2000-01-01");
        let end = |days: u64| EventTimeRange { start: Some(start), end: start.checked_add_days(chrono::Days::new(days)) };
        assert_eq!(batches(&config, true, end(limit), at("2023-03-02"), PLACE).map(|w| w.len() as u64).ok(), Some(limit));
        assert!(batches(&config, true, end(limit + 1), at("2023-03-02"), PLACE).is_err());
    }
}
