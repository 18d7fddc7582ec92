//! A deterministic generator of TLC yellow-taxi months: the same seed gives the same rows on
//! every platform. Rows follow the city's rhythm (weekdays busier than Sundays, evening peaks)
//! and carry the dirt of real files: refunds with negative amounts, dropoffs before pickups,
//! zero distances, trips longer than a day, and a few pickups outside the file's month.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, TimestampNanosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::sources::ingest::parse_month;

/// Which year's file layout to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FileSchema {
    /// int64 ids, µs timestamps, `airport_fee`.
    #[default]
    Y2023,
    /// int32 ids, ns timestamps, `Airport_fee`.
    Y2024,
    /// int32 ids, µs timestamps, `Airport_fee`, `cbd_congestion_fee`.
    Y2025,
}

impl FileSchema {
    /// Whether its files keep times in nanoseconds (which end in April 2262), not microseconds.
    fn keeps_nanoseconds(self) -> bool {
        self == FileSchema::Y2024
    }

    pub fn parse(text: &str) -> Result<FileSchema> {
        match text {
            "2023" => Ok(FileSchema::Y2023),
            "2024" => Ok(FileSchema::Y2024),
            "2025" => Ok(FileSchema::Y2025),
            other => Err(Error::Usage(format!("file schema {other}: expected 2023, 2024 or 2025"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FileCompression {
    #[default]
    Snappy,
    Zstd,
    Gzip,
    None,
}

impl FileCompression {
    pub fn parse(text: &str) -> Result<FileCompression> {
        match text {
            "snappy" => Ok(FileCompression::Snappy),
            "zstd" => Ok(FileCompression::Zstd),
            "gzip" => Ok(FileCompression::Gzip),
            "none" => Ok(FileCompression::None),
            other => Err(Error::Usage(format!(
                "compression {other}: expected snappy, zstd, gzip or none"
            ))),
        }
    }
}

/// Everything that determines a generated month: the recipe a share link carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SampleSpec {
    pub month: String,
    pub rows: usize,
    pub seed: u64,
    pub schema: FileSchema,
}

impl SampleSpec {
    /// The file name the TLC would give this month.
    pub fn file_name(&self) -> String {
        format!("yellow_tripdata_{}.parquet", self.month)
    }
}

/// SplitMix64: tiny, fast and identical everywhere, which is all a sample needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn pick<T: Copy>(&mut self, weighted: &[(T, f64)]) -> T {
        let total: f64 = weighted.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (value, weight) in weighted {
            if x < *weight {
                return *value;
            }
            x -= weight;
        }
        weighted[weighted.len() - 1].0
    }
}

/// Monday first; Friday busiest, Sunday quietest.
const WEEKDAY_WEIGHT: [f64; 7] = [0.92, 1.0, 1.05, 1.1, 1.15, 1.05, 0.83];
/// Trips by hour of day, from the small hours' lull to the evening peak.
const HOUR_WEIGHT: [f64; 24] = [
    2.8, 1.9, 1.3, 0.9, 0.6, 0.6, 1.4, 2.9, 4.0, 4.3, 4.4, 4.6, 4.9, 5.0, 5.3, 5.5, 5.6, 6.1,
    6.6, 6.2, 5.4, 5.1, 4.7, 3.8,
];
/// Busy zones (Midtown, Upper East Side, the airports …); the rest are drawn uniformly.
const BUSY_ZONES: [i32; 16] = [161, 237, 236, 162, 230, 132, 138, 186, 142, 170, 234, 48, 68, 79, 239, 141];

const MICROS_PER_MINUTE: i64 = 60_000_000;

/// One generated trip before it is laid out in a year's schema.
struct Trip {
    vendor: i32,
    pickup: i64,
    dropoff: i64,
    passengers: Option<f64>,
    distance: f64,
    rate_code: Option<f64>,
    pickup_zone: i32,
    dropoff_zone: i32,
    payment_type: i32,
    fare: f64,
    extra: f64,
    tip: f64,
    tolls: f64,
    airport_fee: Option<f64>,
    congestion: Option<f64>,
    cbd_fee: f64,
}

/// `strays`: a few pickups fall outside the month, as in real files (the day before, or years
/// off); late trips for one day have none.
fn trip(rng: &mut Rng, days: &[(NaiveDate, f64)], hours: &[(u32, f64)], month_start: NaiveDate, strays: bool) -> Trip {
    let mut day = rng.pick(days);
    // The chance is drawn either way, keeping the random stream the same in both cases.
    if rng.chance(0.0005) && strays {
        day = if rng.chance(0.8) {
            month_start.pred_opt().unwrap_or(month_start)
        } else {
            NaiveDate::from_ymd_opt(2008, 12, 31).unwrap_or(month_start)
        };
    }
    let hour = rng.pick(hours);
    let second_of_hour = rng.below(3600) as u32;
    let pickup = day
        .and_hms_opt(hour, second_of_hour / 60, second_of_hour % 60)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default();
    let mut minutes = (2.45 + 0.6 * rng.normal()).exp().clamp(0.5, 180.0);
    if rng.chance(0.0001) {
        minutes = 24.0 * 60.0 + rng.unit() * 600.0; // meter left running
    }
    let mut dropoff = pickup + (minutes * MICROS_PER_MINUTE as f64) as i64;
    if rng.chance(0.001) {
        dropoff = pickup - (rng.unit() * 30.0 * MICROS_PER_MINUTE as f64) as i64;
    }
    let speed_mph = (11.0 + 3.0 * rng.normal()).clamp(3.0, 35.0);
    let mut distance = ((minutes / 60.0) * speed_mph * 100.0).round() / 100.0;
    if rng.chance(0.015) {
        distance = 0.0;
    }
    let pickup_zone = if rng.chance(0.75) { BUSY_ZONES[rng.below(16) as usize] } else { 1 + rng.below(265) as i32 };
    let dropoff_zone = if rng.chance(0.6) { BUSY_ZONES[rng.below(16) as usize] } else { 1 + rng.below(265) as i32 };
    let rate_code = rng.pick(&[(1.0, 92.0), (2.0, 3.5), (3.0, 0.4), (4.0, 0.2), (5.0, 1.0), (6.0, 0.01), (99.0, 0.6)]);
    let unknown_payment = rng.chance(0.02); // such rows lack passenger count, rate code, fees
    let payment_type = if unknown_payment { 0 } else { rng.pick(&[(1, 78.0), (2, 18.0), (3, 0.7), (4, 1.5)]) };
    let mut fare = ((3.0 + 2.5 * distance + 0.35 * minutes) * 10.0).round() / 10.0;
    let mut extra = if (16..20).contains(&hour) { 2.5 } else if hour >= 20 || hour < 6 { 1.0 } else { 0.0 };
    let mut tip = if payment_type == 1 { (fare * (0.1 + 0.15 * rng.unit()) * 100.0).round() / 100.0 } else { 0.0 };
    let mut tolls = if rng.chance(0.05) { 6.94 } else { 0.0 };
    let airport = matches!(pickup_zone, 132 | 138);
    if rng.chance(0.008) {
        // A refund: the TLC records it with every amount negated.
        fare = -fare;
        extra = -extra;
        tip = -tip;
        tolls = -tolls;
    }
    Trip {
        vendor: rng.pick(&[(1, 27.0), (2, 72.0), (6, 1.0)]),
        pickup,
        dropoff,
        passengers: (!unknown_payment).then(|| rng.pick(&[(1.0, 74.0), (2.0, 14.0), (3.0, 4.0), (4.0, 2.0), (5.0, 3.0), (6.0, 2.0), (0.0, 1.0)])),
        distance,
        rate_code: (!unknown_payment).then_some(rate_code),
        pickup_zone,
        dropoff_zone,
        payment_type,
        fare,
        extra,
        tip,
        tolls,
        airport_fee: (!unknown_payment).then_some(if airport { 1.75 } else { 0.0 }),
        congestion: (!unknown_payment).then_some(2.5),
        cbd_fee: if rng.chance(0.3) { 0.75 } else { 0.0 },
    }
}

/// Generates a month of trips as Arrow batches in the chosen year's TLC layout.
pub fn generate(spec: &SampleSpec) -> Result<Vec<RecordBatch>> {
    Limit::SampleRows.check(spec.rows as u64, format!("generating {}", spec.month))?;
    let month_start = parse_month(&spec.month).map_err(Error::Usage)?;
    let month_end = month_start
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| Error::Usage(format!("month {} is out of range", spec.month)))?;
    // Nanosecond timestamps end in April 2262; a trip may end days after its month.
    let last_time = month_end.checked_add_days(chrono::Days::new(7)).and_then(|d| d.and_hms_opt(0, 0, 0));
    if spec.schema.keeps_nanoseconds() && last_time.and_then(|t| t.and_utc().timestamp_nanos_opt()).is_none() {
        return Err(Error::Usage(format!(
            "month {}: the 2024 file schema keeps times in nanoseconds, which end in April 2262",
            spec.month
        )));
    }
    let days: Vec<(NaiveDate, f64)> = month_start
        .iter_days()
        .take_while(|d| *d < month_end)
        .map(|d| (d, WEEKDAY_WEIGHT[d.weekday().num_days_from_monday() as usize]))
        .collect();
    let hours: Vec<(u32, f64)> = HOUR_WEIGHT.iter().enumerate().map(|(h, w)| (h as u32, *w)).collect();
    let base = spec.seed ^ 0x5EED_0000_0000_0000 ^ (month_start.num_days_from_ce() as u64);
    // Each batch has its own random stream, so batches can be made in parallel and the rows
    // are the same however many threads make them.
    const BATCH: usize = 128 * 1024;
    let chunks: Vec<(u64, usize)> = (0..spec.rows)
        .step_by(BATCH)
        .enumerate()
        .map(|(index, start)| (index as u64, BATCH.min(spec.rows - start)))
        .collect();
    let make = |(index, n): (u64, usize)| {
        let mut rng = Rng(Rng(base ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next());
        let trips: Vec<Trip> = (0..n).map(|_| trip(&mut rng, &days, &hours, month_start, true)).collect();
        layout(&trips, spec.schema)
    };
    let mut batches = map_in_parallel(chunks, make)?;
    if batches.is_empty() {
        batches.push(layout(&[], spec.schema)?);
    }
    Ok(batches)
}

/// Trips picked up on `day` in the 2023 layout: late arrivals for a day already loaded.
pub fn day_trips(day: NaiveDate, rows: usize, seed: u64) -> Result<Vec<RecordBatch>> {
    Limit::LateTrips.check(rows as u64, format!("late trips for {day}"))?;
    let month_start = day.with_day(1).unwrap_or(day);
    let hours: Vec<(u32, f64)> = HOUR_WEIGHT.iter().enumerate().map(|(h, w)| (h as u32, *w)).collect();
    let mut rng = Rng(seed ^ 0x1A7E_0000_0000_0000 ^ (day.num_days_from_ce() as u64));
    let trips: Vec<Trip> = (0..rows).map(|_| trip(&mut rng, &[(day, 1.0)], &hours, month_start, false)).collect();
    Ok(vec![layout(&trips, FileSchema::Y2023)?])
}

/// `f` over `items` in order: on all cores natively, in turn in the browser.
fn map_in_parallel<T, R, F>(items: Vec<T>, f: F) -> Result<Vec<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Result<R> + Sync,
{
    #[cfg(not(target_arch = "wasm32"))]
    {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
        let mut lanes: Vec<Vec<(usize, T)>> = (0..threads).map(|_| Vec::new()).collect();
        for (index, item) in items.into_iter().enumerate() {
            lanes[index % threads].push((index, item));
        }
        let f = &f;
        let mut results: Vec<(usize, Result<R>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = lanes
                .into_iter()
                .map(|lane| scope.spawn(move || lane.into_iter().map(|(i, item)| (i, f(item))).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        results.sort_by_key(|(index, _)| *index);
        results.into_iter().map(|(_, r)| r).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        items.into_iter().map(f).collect()
    }
}

fn layout(trips: &[Trip], schema: FileSchema) -> Result<RecordBatch> {
    let n = trips.len();
    let ids_32 = schema != FileSchema::Y2023;
    let nanos = schema.keeps_nanoseconds();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let id = |name: &str, values: &dyn Fn(&Trip) -> i32, fields: &mut Vec<Field>, columns: &mut Vec<ArrayRef>| {
        if ids_32 {
            let mut b = Int32Builder::with_capacity(n);
            trips.iter().for_each(|t| b.append_value(values(t)));
            fields.push(Field::new(name, DataType::Int32, true));
            columns.push(Arc::new(b.finish()));
        } else {
            let mut b = Int64Builder::with_capacity(n);
            trips.iter().for_each(|t| b.append_value(values(t) as i64));
            fields.push(Field::new(name, DataType::Int64, true));
            columns.push(Arc::new(b.finish()));
        }
    };
    let time = |name: &str, values: &dyn Fn(&Trip) -> i64, fields: &mut Vec<Field>, columns: &mut Vec<ArrayRef>| {
        if nanos {
            let mut b = TimestampNanosecondBuilder::with_capacity(n);
            trips.iter().for_each(|t| b.append_value(values(t) * 1000));
            fields.push(Field::new(name, DataType::Timestamp(TimeUnit::Nanosecond, None), true));
            columns.push(Arc::new(b.finish()));
        } else {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            trips.iter().for_each(|t| b.append_value(values(t)));
            fields.push(Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true));
            columns.push(Arc::new(b.finish()));
        }
    };
    let double = |name: &str, values: &dyn Fn(&Trip) -> Option<f64>, fields: &mut Vec<Field>, columns: &mut Vec<ArrayRef>| {
        let mut b = Float64Builder::with_capacity(n);
        trips.iter().for_each(|t| b.append_option(values(t)));
        fields.push(Field::new(name, DataType::Float64, true));
        columns.push(Arc::new(b.finish()));
    };
    let sign = |t: &Trip| if t.fare < 0.0 { -1.0 } else { 1.0 };
    let mta_tax = move |t: &Trip| 0.5 * sign(t);
    let improvement = move |t: &Trip| 1.0 * sign(t);

    id("VendorID", &|t| t.vendor, &mut fields, &mut columns);
    time("tpep_pickup_datetime", &|t| t.pickup, &mut fields, &mut columns);
    time("tpep_dropoff_datetime", &|t| t.dropoff, &mut fields, &mut columns);
    double("passenger_count", &|t| t.passengers, &mut fields, &mut columns);
    double("trip_distance", &|t| Some(t.distance), &mut fields, &mut columns);
    double("RatecodeID", &|t| t.rate_code, &mut fields, &mut columns);
    let mut flags = StringBuilder::with_capacity(n, n);
    trips.iter().for_each(|t| flags.append_option(t.rate_code.map(|_| "N")));
    fields.push(Field::new("store_and_fwd_flag", DataType::Utf8, true));
    columns.push(Arc::new(flags.finish()));
    id("PULocationID", &|t| t.pickup_zone, &mut fields, &mut columns);
    id("DOLocationID", &|t| t.dropoff_zone, &mut fields, &mut columns);
    let mut payment = Int64Builder::with_capacity(n);
    trips.iter().for_each(|t| payment.append_value(t.payment_type as i64));
    fields.push(Field::new("payment_type", DataType::Int64, true));
    columns.push(Arc::new(payment.finish()));
    double("fare_amount", &|t| Some(t.fare), &mut fields, &mut columns);
    double("extra", &|t| Some(t.extra), &mut fields, &mut columns);
    double("mta_tax", &|t| Some(mta_tax(t)), &mut fields, &mut columns);
    double("tip_amount", &|t| Some(t.tip), &mut fields, &mut columns);
    double("tolls_amount", &|t| Some(t.tolls), &mut fields, &mut columns);
    double("improvement_surcharge", &|t| Some(improvement(t)), &mut fields, &mut columns);
    let with_cbd = schema == FileSchema::Y2025;
    let total = move |t: &Trip| {
        let fees = t.congestion.unwrap_or(0.0) + t.airport_fee.unwrap_or(0.0) + if with_cbd { t.cbd_fee } else { 0.0 };
        let total = t.fare + t.extra + mta_tax(t) + t.tip + t.tolls + improvement(t) + fees * sign(t);
        (total * 100.0).round() / 100.0
    };
    double("total_amount", &|t| Some(total(t)), &mut fields, &mut columns);
    double("congestion_surcharge", &|t| t.congestion.map(|c| c * sign(t)), &mut fields, &mut columns);
    let airport_name = if schema == FileSchema::Y2023 { "airport_fee" } else { "Airport_fee" };
    double(airport_name, &|t| t.airport_fee.map(|a| a * sign(t)), &mut fields, &mut columns);
    if with_cbd {
        double("cbd_congestion_fee", &|t| Some(t.cbd_fee * sign(t)), &mut fields, &mut columns);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Usage(format!("sample layout: {e}")))
}

/// Writes batches as one Parquet file.
pub fn write_parquet(batches: &[RecordBatch], compression: FileCompression) -> Result<Vec<u8>> {
    let codec = match compression {
        FileCompression::Snappy => Compression::SNAPPY,
        FileCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
        FileCompression::Gzip => Compression::GZIP(GzipLevel::default()),
        FileCompression::None => Compression::UNCOMPRESSED,
    };
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Usage("nothing to write".into()))?;
    let props = WriterProperties::builder().set_compression(codec).build();
    let mut out = Vec::new();
    let failed = |e: datafusion::parquet::errors::ParquetError| Error::Usage(format!("writing Parquet: {e}"));
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(failed)?;
    for batch in batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.close().map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ingest::read_trips;

    fn spec(rows: usize, schema: FileSchema) -> SampleSpec {
        SampleSpec { month: "2023-03".into(), rows, seed: 1, schema }
    }

    #[test]
    fn same_seed_same_rows() {
        let a = generate(&spec(1000, FileSchema::Y2023)).unwrap_or_default();
        let b = generate(&spec(1000, FileSchema::Y2023)).unwrap_or_default();
        assert_eq!(a, b);
        let c = generate(&SampleSpec { seed: 2, ..spec(1000, FileSchema::Y2023) }).unwrap_or_default();
        assert_ne!(a, c);
    }

    #[test]
    fn every_schema_and_codec_round_trips_through_ingest() {
        for schema in [FileSchema::Y2023, FileSchema::Y2024, FileSchema::Y2025] {
            for compression in [FileCompression::Snappy, FileCompression::Zstd, FileCompression::Gzip, FileCompression::None] {
                let batches = generate(&spec(20_000, schema)).unwrap_or_default();
                let bytes = write_parquet(&batches, compression).unwrap_or_default();
                let file = read_trips("yellow_tripdata_2023-03.parquet", bytes, None)
                    .unwrap_or_else(|e| panic!("{schema:?} {compression:?}: {e}"));
                assert_eq!(file.stats.rows, 20_000);
                // The dirt is there, in plausible amounts.
                assert!((100..300).contains(&file.stats.negative_amounts), "{:?}", file.stats);
                assert!(file.stats.outside_month >= 1, "{:?}", file.stats);
            }
        }
    }

    #[test]
    fn a_month_past_what_the_file_schema_can_time_is_refused() {
        let mut far = spec(5, FileSchema::Y2024);
        far.month = "6023-03".into();
        let error = generate(&far).expect_err("past 2262 in nanoseconds");
        assert_eq!(error, Error::Usage("month 6023-03: the 2024 file schema keeps times in nanoseconds, which end in April 2262".into()));
        far.schema = FileSchema::Y2023;
        assert_eq!(generate(&far).map(|b| b.iter().map(RecordBatch::num_rows).sum::<usize>()), Ok(5));
    }

    #[test]
    fn a_month_or_late_trips_over_the_limit_are_refused_before_any_row_is_made() {
        let error = generate(&spec(100_000_000, FileSchema::Y2023)).expect_err("10^8 rows");
        assert!(matches!(error, Error::Limit { limit: Limit::SampleRows, value: Some(100_000_000), .. }), "{error:?}");
        assert!(error.to_string().starts_with("generating 2023-03: 100,000,000 rows is over"), "{error}");
        let day = NaiveDate::from_ymd_opt(2023, 3, 15).unwrap_or_default();
        let error = day_trips(day, 1 << 40, 1).expect_err("2^40 late trips");
        assert!(matches!(error, Error::Limit { limit: Limit::LateTrips, .. }), "{error:?}");
        assert_eq!(day_trips(day, 10, 1).map(|b| b.iter().map(RecordBatch::num_rows).sum::<usize>()), Ok(10));
    }
}
