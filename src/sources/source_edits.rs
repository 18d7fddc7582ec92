//! Changes to the raw trips after they were loaded, as real pipelines see them: trips that
//! arrive late for a day already processed, and a day whose fares the provider corrects.
//! Each returns a new trips table; the engine swaps it in.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, TimestampMicrosecondType};

use crate::error::{Error, Result};
use crate::sources::ingest;
use crate::sources::sample;
use crate::sql::warehouse::{Table, typed_column};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `trips` plus `rows` generated trips picked up on `day`, stamped with the day's month.
pub fn with_late_trips(trips: &Table, day: NaiveDate, rows: usize, seed: u64) -> Result<Table> {
    let month = day.format("%Y-%m").to_string();
    let name = format!("late trips for {day}");
    if !has_month(trips, &month)? {
        return Err(Error::ingest(&name, format!("no trips of {month} are loaded: late trips join a month already there")));
    }
    let late = ingest::trips_from_batches(&name, sample::day_trips(day, rows, seed)?, &month)?;
    let mut batches: Vec<RecordBatch> = trips.batches.iter().cloned().collect();
    batches.extend(late.table.batches.iter().cloned());
    Ok(Table::new(ingest::trips_schema(), batches))
}

/// `trips` with `amount` taken off the `total_amount` of every trip picked up on `day`
/// (a surcharge the provider had charged by mistake). Fails if no trip is on that day.
pub fn with_fares_corrected(trips: &Table, day: NaiveDate, amount: f64) -> Result<Table> {
    let name = format!("fare correction for {day}");
    let bad = |message: String| Error::ingest(&name, message);
    let total = trips.schema.index_of("total_amount").map_err(|e| bad(e.to_string()))?;
    let day_start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or_default();
    let mut corrected = 0usize;
    let mut batches = Vec::with_capacity(trips.batches.len());
    for batch in trips.batches.iter() {
        let pickups = typed_column(batch, ingest::EVENT_TIME, |c| c.as_primitive_opt::<TimestampMicrosecondType>()).map_err(bad)?;
        let totals = typed_column(batch, "total_amount", |c| c.as_primitive_opt::<Float64Type>()).map_err(bad)?;
        let fixed: Float64Array = (0..batch.num_rows())
            .map(|row| {
                let on_day = pickups.is_valid(row) && (pickups.value(row) - day_start).div_euclid(MICROS_PER_DAY) == 0;
                let value = totals.is_valid(row).then(|| totals.value(row));
                if on_day && value.is_some() {
                    corrected += 1;
                    value.map(|v| ((v - amount) * 100.0).round() / 100.0)
                } else {
                    value
                }
            })
            .collect();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if let Some(column) = columns.get_mut(total) {
            *column = Arc::new(fixed);
        }
        batches.push(RecordBatch::try_new(trips.schema.clone(), columns).map_err(|e| bad(e.to_string()))?);
    }
    if corrected == 0 {
        return Err(bad("no trip is picked up on that day".into()));
    }
    Ok(Table::new(trips.schema.clone(), batches))
}

fn has_month(trips: &Table, month: &str) -> Result<bool> {
    for batch in trips.batches.iter() {
        let months = typed_column(batch, "partition_date", |c| c.as_string_opt::<i32>()).map_err(|e| Error::ingest("trips", e))?;
        if months.iter().any(|m| m == Some(month)) {
            return Ok(true);
        }
    }
    Ok(false)
}


#[cfg(test)]
mod tests {
    use super::*;

    fn march() -> Table {
        let spec = sample::SampleSpec { month: "2023-03".into(), rows: 3_000, seed: 1, schema: sample::FileSchema::Y2023 };
        let batches = sample::generate(&spec).expect("sample");
        ingest::trips_from_batches("march", batches, "2023-03").expect("ingest").table
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn late_trips_join_their_month_only() {
        let trips = march();
        let more = with_late_trips(&trips, day("2023-03-15"), 40, 7).expect("march is loaded");
        assert_eq!(more.num_rows(), trips.num_rows() + 40);
        let error = with_late_trips(&trips, day("2023-04-02"), 40, 7).expect_err("april is not loaded");
        assert!(error.to_string().contains("no trips of 2023-04"), "{error}");
    }

    #[test]
    fn a_fare_correction_touches_its_day_only() {
        let trips = march();
        let fixed = with_fares_corrected(&trips, day("2023-03-20"), 5.0).expect("trips on the 20th");
        let sum = |t: &Table| -> f64 {
            t.batches.iter().map(|b| b.column(9).as_primitive::<Float64Type>().iter().flatten().sum::<f64>()).sum()
        };
        let start = day("2023-03-20").and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_micros()).unwrap_or_default();
        let on_day: usize = trips
            .batches
            .iter()
            .map(|b| {
                let pickups = b.column(6).as_primitive::<TimestampMicrosecondType>();
                pickups.iter().flatten().filter(|t| (t - start).div_euclid(MICROS_PER_DAY) == 0).count()
            })
            .sum();
        assert!(on_day > 50, "{on_day}");
        assert!((sum(&trips) - sum(&fixed) - 5.0 * on_day as f64).abs() < 0.01);
        assert!(with_fares_corrected(&trips, day("2023-05-01"), 5.0).is_err());
    }
}
