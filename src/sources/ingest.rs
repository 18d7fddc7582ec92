//! Reading TLC yellow-taxi files (Parquet or CSV, any year's schema) into the lesson's raw
//! `trips` shape, and the NYC zone table into `zones`. The course's ingest renames a handful of
//! columns and stamps each row with its file's month; so does this.


use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::{CastOptions, SortOptions, cast_with_options, concat, interleave, sort_to_indices};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use datafusion::parquet::errors::ParquetError;

use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::sources::contain::contained;
use crate::sources::page_headers;
use crate::sql::csv;
use crate::sql::warehouse::{RelationName, Table};

/// The NYC TLC zone table (LocationID, zone, borough; geometry dropped).
pub const BUILTIN_ZONES: &str = include_str!("../../data/taxi_zones.csv");

/// The raw trips columns: (name in the warehouse, its type, the TLC column it comes from).
const TRIP_COLUMNS: &[(&str, DataType, &str)] = &[
    ("vendor_id", DataType::Int32, "VendorID"),
    ("pickup_zone_id", DataType::Int32, "PULocationID"),
    ("dropoff_zone_id", DataType::Int32, "DOLocationID"),
    ("rate_code_id", DataType::Float64, "RatecodeID"),
    ("payment_type", DataType::Int32, "payment_type"),
    ("dropoff_datetime", DataType::Timestamp(TimeUnit::Microsecond, None), "tpep_dropoff_datetime"),
    ("pickup_datetime", DataType::Timestamp(TimeUnit::Microsecond, None), "tpep_pickup_datetime"),
    ("trip_distance", DataType::Float64, "trip_distance"),
    ("passenger_count", DataType::Float64, "passenger_count"),
    ("total_amount", DataType::Float64, "total_amount"),
];

static TRIPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = TRIP_COLUMNS
        .iter()
        .map(|(name, data_type, _)| Field::new(*name, data_type.clone(), true))
        .collect();
    fields.push(Field::new("partition_date", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
});

/// The physical names of the raw tables the TLC ingest writes.
/// The raw trips' event time: a partition's day is the day its trips were picked up.
pub const EVENT_TIME: &str = "pickup_datetime";

pub fn trips_relation() -> RelationName {
    RelationName::main("trips")
}
pub fn zones_relation() -> RelationName {
    RelationName::main("zones")
}

/// The schema of `raw_taxis.trips`.
pub fn trips_schema() -> SchemaRef {
    Arc::clone(&TRIPS_SCHEMA)
}

/// One ingested monthly file: its rows in the trips shape, and what a person wants to know
/// about it before trusting it.
#[derive(Debug, Clone)]
pub struct TripFile {
    pub month: String,
    pub table: Table,
    pub stats: FileStats,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileStats {
    pub rows: usize,
    /// Earliest and latest pickup, `YYYY-MM-DD HH:MM:SS`.
    pub pickup_min: Option<String>,
    pub pickup_max: Option<String>,
    /// Pickups outside the file's month (real files carry a few).
    pub outside_month: usize,
    pub negative_amounts: usize,
}

/// The month a TLC file name carries (`yellow_tripdata_2023-03.parquet` → `2023-03`).
pub fn month_from_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(6)).rev().find_map(|i| {
        let candidate = &name.get(i..i + 7)?;
        parse_month(candidate).ok().map(|_| candidate.to_string())
    })
}

/// Checks a `YYYY-MM` month.
pub fn parse_month(month: &str) -> std::result::Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| month.len() == 7)
        .ok_or_else(|| format!("`{month}` is not a month (YYYY-MM)"))
}

/// Reads a yellow-taxi trip file. `month` overrides the month in the file name. A file is
/// untrusted input: over [`Limit::TripFileBytes`] it is refused unread, and a decoder that
/// panics on it natively is reported as the file's error. The bytes are taken, not lent: the
/// Parquet reader needs them owned, and a month is too big to copy.
pub fn read_trips(name: &str, bytes: Vec<u8>, month: Option<&str>) -> Result<TripFile> {
    Limit::TripFileBytes.check(bytes.len() as u64, name)?;
    contained(|| read_trips_unbounded(name, bytes, month))
        .unwrap_or_else(|panic| Err(Error::ingest(name, format!("unreadable file: its decoder failed on it ({panic})"))))
}

fn read_trips_unbounded(name: &str, bytes: Vec<u8>, month: Option<&str>) -> Result<TripFile> {
    let month = match month {
        Some(m) => {
            parse_month(m).map_err(|e| Error::ingest(name, e))?;
            m.to_string()
        }
        None => month_from_name(name).ok_or_else(|| {
            Error::ingest(name, "no month (YYYY-MM) in the file name: name it after its month, as yellow_tripdata_2023-03.parquet")
        })?,
    };
    let is_parquet = bytes.starts_with(b"PAR1");
    let batches = if bytes.is_empty() {
        return Err(Error::ingest(name, "the file is empty"));
    } else if is_parquet {
        read_parquet(name, bytes)?
    } else if name.to_ascii_lowercase().ends_with(".parquet") {
        return Err(Error::ingest(name, not_parquet(&bytes)));
    } else {
        read_csv(name, &bytes)?
    };
    normalise(name, batches, &month, !is_parquet)
}

/// Trips already decoded into Arrow batches in a TLC layout (e.g. the sample generator's),
/// normalised like a file's.
pub fn trips_from_batches(name: &str, batches: Vec<RecordBatch>, month: &str) -> Result<TripFile> {
    parse_month(month).map_err(|e| Error::ingest(name, e))?;
    normalise(name, batches, month, false)
}

/// TLC columns renamed and typed as the raw trips table; a bad value is reported by its CSV
/// line or row number. Each batch is dropped once converted, so the file's columns and the
/// table's are never all in memory at once.
fn normalise(name: &str, batches: Vec<RecordBatch>, month: &str, is_csv: bool) -> Result<TripFile> {
    let month = month.to_string();
    let source_schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::ingest(name, "the file has no rows"))?;
    let columns = locate_columns(name, &source_schema)?;
    let mut out = Vec::with_capacity(batches.len());
    let mut first_row = 0;
    for batch in batches {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(TRIP_COLUMNS.len() + 1);
        for ((target, data_type, tlc), index) in TRIP_COLUMNS.iter().zip(&columns) {
            let source = batch.column(*index);
            let converted = convert(source, data_type).map_err(|bad_row| {
                let value = display_value(source, bad_row);
                let row = first_row + bad_row;
                let place = if is_csv { format!("line {}", row + 2) } else { format!("row {}", row + 1) };
                Error::ingest(name, format!("{place}: column {tlc}: cannot read `{value}` as {} ({target})", type_name(data_type)))
            })?;
            arrays.push(converted);
        }
        arrays.push(Arc::new(StringArray::from(vec![month.as_str(); batch.num_rows()])));
        out.push(RecordBatch::try_new(trips_schema(), arrays).map_err(|e| Error::ingest(name, e))?);
        first_row += batch.num_rows();
    }
    let table = Table::new(trips_schema(), clustered_by_pickup(out).map_err(|e| Error::ingest(name, e))?);
    let stats = file_stats(&table, &month);
    if stats.rows == 0 {
        return Err(Error::ingest(name, "the file has no rows"));
    }
    Ok(TripFile { month, table, stats })
}

/// Rows per batch once clustered: small enough that a day's partition skips most of a month.
const CLUSTER_ROWS: usize = 8192;

/// The month's rows sorted by pickup time, in batches of [`CLUSTER_ROWS`]: a scan for one
/// day then skips the batches of other days (the warehouse keeps each batch's time range),
/// and every model built from trips inherits the order. Sorted a column at a time, each
/// unsorted column dropped once its sorted copy is made: the month is in memory about once,
/// not twice. Each batch owns its buffers: slices of one sorted array would each report (and
/// keep) the whole month's memory, which overflows 32-bit size sums in wasm.
fn clustered_by_pickup(batches: Vec<RecordBatch>) -> std::result::Result<Vec<RecordBatch>, ArrowError> {
    let schema = trips_schema();
    let time = schema.index_of(EVENT_TIME)?;
    let pickups = concat(&batches.iter().map(|b| b.column(time).as_ref()).collect::<Vec<_>>())?;
    let order = sort_to_indices(&pickups, Some(SortOptions { descending: false, nulls_first: false }), None)?;
    drop(pickups);
    // Where each row of the sorted order is: (its batch, its row in that batch).
    let starts: Vec<usize> = batches.iter().scan(0, |start, b| Some(std::mem::replace(start, *start + b.num_rows()))).collect();
    let positions: Vec<(usize, usize)> = order
        .values()
        .iter()
        .map(|&row| {
            let batch = starts.partition_point(|&start| start <= row as usize) - 1;
            (batch, row as usize - starts[batch])
        })
        .collect();
    drop(order);
    let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(batches.len()); schema.fields().len()];
    for batch in batches {
        for (column, array) in columns.iter_mut().zip(batch.into_parts().1) {
            column.push(array);
        }
    }
    let mut sorted: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(columns.len()); positions.len().div_ceil(CLUSTER_ROWS)];
    for column in columns {
        let arrays: Vec<&dyn Array> = column.iter().map(|a| a.as_ref()).collect();
        for (chunk, positions) in sorted.iter_mut().zip(positions.chunks(CLUSTER_ROWS)) {
            chunk.push(interleave(&arrays, positions)?);
        }
    }
    sorted.into_iter().map(|columns| RecordBatch::try_new(Arc::clone(&schema), columns)).collect()
}

/// Only the columns the trips table takes are decoded (a TLC file has about twice as many).
fn read_parquet(name: &str, bytes: Vec<u8>) -> Result<Vec<RecordBatch>> {
    if bytes.len() < 12 || !bytes.ends_with(b"PAR1") {
        return Err(Error::ingest(name, "truncated Parquet file: its footer is missing"));
    }
    // The Arrow schema a writer may embed is only a hint for types we cast anyway, and its
    // IPC decoder is one more parser of untrusted bytes: the Parquet types are enough.
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let unreadable = |e: ParquetError| Error::ingest(name, format!("unreadable Parquet file: {e}"));
    let bytes = Bytes::from(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options).map_err(unreadable)?;
    page_headers::check(&bytes, builder.metadata()).map_err(|e| Error::ingest(name, format!("damaged Parquet file: {e}")))?;
    let columns = locate_columns(name, builder.schema())?;
    let projection = ProjectionMask::roots(builder.parquet_schema(), columns);
    let reader = builder.with_projection(projection).with_batch_size(64 * 1024).build().map_err(unreadable)?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::ingest(name, format!("unreadable Parquet data: {e}")))
}

fn not_parquet(bytes: &[u8]) -> String {
    let looks_like = if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        ": it is a JPEG image"
    } else if bytes.starts_with(b"\x89PNG") {
        ": it is a PNG image"
    } else if bytes.starts_with(b"PK") {
        ": it is a zip archive"
    } else {
        ""
    };
    format!("not a Parquet file (no PAR1 header){looks_like}")
}

/// CSV columns are read as text, then converted column by column so a bad value can be
/// reported with its line.
fn read_csv(name: &str, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(Error::ingest(name, "not a Parquet file, nor a UTF-8 CSV"));
    }
    csv::read_as_text(bytes).map_err(|e| Error::ingest(name, e))
}

/// The index of each TLC column in the file, matched case-insensitively; a file of another
/// kind (green taxi, for-hire vehicles) is named as such.
fn locate_columns(name: &str, schema: &Schema) -> Result<Vec<usize>> {
    let find = |column: &str| {
        schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(column))
    };
    if find("tpep_pickup_datetime").is_none() {
        let kind = if find("lpep_pickup_datetime").is_some() {
            Some("a green taxi file (lpep_pickup_datetime)")
        } else if find("dispatching_base_num").is_some() || find("hvfhs_license_num").is_some() {
            Some("a for-hire vehicle (FHV) file")
        } else {
            None
        };
        if let Some(kind) = kind {
            return Err(Error::ingest(
                name,
                format!("{kind}; Backfill ingests yellow taxi trips (tpep_pickup_datetime)"),
            ));
        }
    }
    let missing: Vec<&str> = TRIP_COLUMNS
        .iter()
        .map(|(_, _, tlc)| *tlc)
        .filter(|tlc| find(tlc).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::ingest(
            name,
            format!("not a yellow taxi trip file: missing column(s) {}", missing.join(", ")),
        ));
    }
    Ok(TRIP_COLUMNS
        .iter()
        .filter_map(|(_, _, tlc)| find(tlc))
        .collect())
}

/// Converts a column strictly; on failure returns the first row that could not be converted.
fn convert(source: &ArrayRef, target: &DataType) -> std::result::Result<ArrayRef, usize> {
    let strict = CastOptions { safe: false, ..Default::default() };
    if let Ok(array) = cast_with_options(source, target, &strict) {
        return Ok(array);
    }
    // Find the culprit: a lenient cast turns bad values into nulls.
    let lenient = cast_with_options(source, target, &CastOptions::default()).map_err(|_| 0usize)?;
    Err((0..source.len())
        .find(|&i| lenient.is_null(i) && !source.is_null(i))
        .unwrap_or(0))
}

fn display_value(array: &ArrayRef, row: usize) -> String {
    datafusion::arrow::util::display::ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_default()
}

fn type_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Int32 => "an integer",
        DataType::Float64 => "a number",
        DataType::Timestamp(..) => "a timestamp",
        _ => "text",
    }
}

fn file_stats(table: &Table, month: &str) -> FileStats {
    let index = |name: &str| table.schema.index_of(name).ok();
    let (Some(pickup), Some(amount)) = (index(EVENT_TIME), index("total_amount")) else {
        return FileStats { rows: table.num_rows(), pickup_min: None, pickup_max: None, outside_month: 0, negative_amounts: 0 };
    };
    let month_start = parse_month(month).ok();
    let month_end = month_start.and_then(|d| d.checked_add_months(chrono::Months::new(1)));
    let micros = |d: Option<chrono::NaiveDate>| {
        d.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp_micros())
    };
    let (lo, hi) = (micros(month_start), micros(month_end));
    let (mut min, mut max, mut outside, mut negative) = (i64::MAX, i64::MIN, 0, 0);
    for batch in table.batches.iter() {
        let pickups = batch.column(pickup).as_primitive_opt::<TimestampMicrosecondType>();
        for t in pickups.into_iter().flatten().flatten() {
            min = min.min(t);
            max = max.max(t);
            if lo.is_some_and(|lo| t < lo) || hi.is_some_and(|hi| t >= hi) {
                outside += 1;
            }
        }
        let amounts = batch.column(amount).as_primitive_opt::<Float64Type>();
        negative += amounts.into_iter().flatten().flatten().filter(|a| *a < 0.0).count();
    }
    let text = |t: i64| (t != i64::MAX && t != i64::MIN).then(|| crate::sql::dialect::timestamp_text(t)).flatten();
    FileStats {
        rows: table.num_rows(),
        pickup_min: text(min),
        pickup_max: text(max),
        outside_month: outside,
        negative_amounts: negative,
    }
}

/// The zone table: `zone_id, zone, borough` (+ `geometry` when the file has `the_geom`), from
/// a TLC `taxi_zones.csv`.
pub fn read_zones(name: &str, bytes: &[u8]) -> Result<Table> {
    let batches = read_csv(name, bytes)?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::ingest(name, "the zone file has no rows"))?;
    let find = |column: &str| {
        schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(column))
    };
    let wanted = [
        ("zone_id", "LocationID", DataType::Int64),
        ("zone", "zone", DataType::Utf8),
        ("borough", "borough", DataType::Utf8),
        ("geometry", "the_geom", DataType::Utf8),
    ];
    let present: Vec<_> = wanted
        .iter()
        .filter_map(|(to, from, t)| find(from).map(|i| (*to, *from, t.clone(), i)))
        .collect();
    for required in ["LocationID", "zone", "borough"] {
        if !present.iter().any(|(_, from, _, _)| *from == required) {
            return Err(Error::ingest(name, format!("not a taxi zone table: missing column {required}")));
        }
    }
    let out_schema = Arc::new(Schema::new(
        present.iter().map(|(to, _, t, _)| Field::new(*to, t.clone(), true)).collect::<Vec<_>>(),
    ));
    let mut out = Vec::new();
    let mut first_row = 0;
    for batch in &batches {
        let mut arrays = Vec::new();
        for (_, from, t, i) in &present {
            arrays.push(convert(batch.column(*i), t).map_err(|row| {
                Error::ingest(name, format!("line {}: column {from}: cannot read `{}`", first_row + row + 2, display_value(batch.column(*i), row)))
            })?);
        }
        out.push(RecordBatch::try_new(Arc::clone(&out_schema), arrays).map_err(|e| Error::ingest(name, e))?);
        first_row += batch.num_rows();
    }
    Ok(Table::new(out_schema, out))
}

/// The NYC TLC zone table shipped with Backfill (without geometry, to keep the app small).
pub fn builtin_zones() -> Result<Table> {
    read_zones("taxi_zones.csv", BUILTIN_ZONES.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_comes_from_the_file_name() {
        assert_eq!(month_from_name("yellow_tripdata_2023-03.parquet").as_deref(), Some("2023-03"));
        assert_eq!(month_from_name("data/taxi_trips_2024-11.csv").as_deref(), Some("2024-11"));
        assert_eq!(month_from_name("trips.parquet"), None);
        assert_eq!(month_from_name("yellow_2023-13.parquet"), None);
    }

    #[test]
    fn csv_garbage_is_reported_with_its_line() {
        let csv = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,PULocationID,DOLocationID,payment_type,total_amount\n\
                   1,2023-03-01 00:06:43,2023-03-01 00:16:43,1,1.5,1,161,237,1,12.5\n\
                   2,not a time,2023-03-01 00:16:43,1,1.5,1,161,237,1,12.5\n";
        let err = read_trips("trips_2023-03.csv", csv.as_bytes().to_vec(), None).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("trips_2023-03.csv: line 3: column tpep_pickup_datetime: cannot read `not a time` as a timestamp (pickup_datetime)")
        );
    }

    #[test]
    fn other_files_are_named() {
        let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 0];
        let err = read_trips("yellow_tripdata_2023-03.parquet", jpeg.to_vec(), None).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("yellow_tripdata_2023-03.parquet: not a Parquet file (no PAR1 header): it is a JPEG image"));
        let err = read_trips("yellow_tripdata_2023-03.parquet", Vec::new(), None).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("yellow_tripdata_2023-03.parquet: the file is empty"));
        let green = "VendorID,lpep_pickup_datetime,lpep_dropoff_datetime\n2,2023-03-01 00:00:00,2023-03-01 00:10:00\n";
        let err = read_trips("green_tripdata_2023-03.csv", green.as_bytes().to_vec(), None).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("green_tripdata_2023-03.csv: a green taxi file (lpep_pickup_datetime); Backfill ingests yellow taxi trips (tpep_pickup_datetime)"));
    }

    #[test]
    fn a_forged_page_header_is_refused_before_the_parquet_crate_skips_through_it() {
        // Found by fuzzing: a list of 2^31 doubles in a page header made the crate skip for seconds
        // natively, minutes in the tab.
        let forged = include_bytes!("../../fuzz/regressions/trip_parquet/hang-page_header_list_of_doubles_past_the_chunk_end");
        let err = read_trips("yellow_tripdata_2023-03.parquet", forged.to_vec(), None).err().map(|e| e.to_string());
        let expected = "yellow_tripdata_2023-03.parquet: damaged Parquet file: column \"extra\": the page header at byte 1046 declares more values than its column chunk holds";
        assert_eq!(err.as_deref(), Some(expected));
    }

    #[test]
    fn a_month_is_clustered_by_pickup_time_in_batches_of_its_own() {
        use crate::sources::sample::{FileSchema, SampleSpec, generate};
        // Each row as (pickup, dropoff, fare), sorted: the same rows before and after, whatever
        // their order, only if every column moved with its row.
        let rows = |batches: &[RecordBatch], [pickup, dropoff, fare]: [&str; 3]| {
            let micros = |b: &RecordBatch, name: &str| -> Vec<Option<i64>> {
                let column = b.column_by_name(name).map(|c| cast_with_options(c, &DataType::Timestamp(TimeUnit::Microsecond, None), &CastOptions::default()));
                column.and_then(|c| c.ok()).map(|c| c.as_primitive::<TimestampMicrosecondType>().iter().collect()).unwrap_or_default()
            };
            let mut rows: Vec<(Option<i64>, Option<i64>, Option<u64>)> = Vec::new();
            for b in batches {
                let fares: Vec<Option<u64>> = b.column_by_name(fare).map(|c| c.as_primitive::<Float64Type>().iter().map(|f| f.map(f64::to_bits)).collect()).unwrap_or_default();
                rows.extend(micros(b, pickup).into_iter().zip(micros(b, dropoff)).zip(fares).map(|((p, d), f)| (p, d, f)));
            }
            rows.sort();
            rows
        };
        let spec = SampleSpec { month: "2023-03".into(), rows: 20_000, seed: 3, schema: FileSchema::Y2023 };
        let mut batches = generate(&spec).unwrap_or_else(|e| panic!("{e}"));
        // Later rows first, so the order cannot survive by accident.
        batches.reverse();
        let before = rows(&batches, ["tpep_pickup_datetime", "tpep_dropoff_datetime", "total_amount"]);
        let file = trips_from_batches("yellow_tripdata_2023-03.parquet", batches, "2023-03").unwrap_or_else(|e| panic!("{e}"));
        let sizes: Vec<usize> = file.table.batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [8192, 8192, 3616]);
        let pickups: Vec<Option<i64>> = file
            .table
            .batches
            .iter()
            .flat_map(|b| b.column_by_name(EVENT_TIME).map(|c| c.as_primitive::<TimestampMicrosecondType>().iter().collect::<Vec<_>>()).unwrap_or_default())
            .collect();
        assert_eq!(pickups.len(), 20_000);
        assert!(pickups.windows(2).all(|w| w[1].is_none() || w[0].is_some() && w[0] <= w[1]), "sorted, nulls last");
        assert_eq!(rows(&file.table.batches, ["pickup_datetime", "dropoff_datetime", "total_amount"]), before);
    }

    #[test]
    fn builtin_zones_load() {
        let zones = builtin_zones().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zones.num_rows(), 263);
        assert_eq!(zones.schema.field(0).name(), "zone_id");
    }
}
