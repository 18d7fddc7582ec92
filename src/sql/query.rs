//! Showing query results: CSV (header, `YYYY-MM-DD HH:MM:SS` timestamps, floats in full
//! precision), an aligned text table, or JSON rows.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::sql::dialect::timestamp_text;
use crate::sql::warehouse::Table;

/// A column type as DuckDB names it (`INTEGER`, `VARCHAR`, `DECIMAL(18,3)`), for templates that
/// ask the warehouse about columns.
pub fn duckdb_type_name(data_type: &DataType) -> String {
    let name = match data_type {
        DataType::Boolean => "BOOLEAN",
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::UInt8 => "UTINYINT",
        DataType::UInt16 => "USMALLINT",
        DataType::UInt32 => "UINTEGER",
        DataType::UInt64 => "UBIGINT",
        DataType::Float16 | DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "BLOB",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Time32(_) | DataType::Time64(_) => "TIME",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE",
        DataType::Timestamp(_, None) => "TIMESTAMP",
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL",
        DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) => {
            return format!("DECIMAL({precision},{scale})");
        }
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
            return format!("{}[]", duckdb_type_name(item.data_type()));
        }
        DataType::Null => "\"NULL\"",
        other => return other.to_string().to_uppercase(),
    };
    name.to_string()
}

/// One cell as text; `None` for NULL.
pub fn cell(batch: &RecordBatch, column: usize, row: usize) -> Option<String> {
    let array = batch.column(column);
    if array.is_null(row) {
        return None;
    }
    let micros = |a: &dyn Array, row: usize| a.as_primitive_opt::<TimestampMicrosecondType>().and_then(|m| timestamp_text(m.value(row)));
    let text = match array.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, None) => micros(array.as_ref(), row),
        DataType::Timestamp(..) => datafusion::arrow::compute::cast(
            &array.slice(row, 1),
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .ok()
        .and_then(|m| micros(m.as_ref(), 0)),
        // Rust's shortest round-trip form: every digit needed, none more.
        DataType::Float64 => array.as_primitive_opt::<Float64Type>().map(|a| format!("{}", a.value(row))),
        DataType::Float32 => array.as_primitive_opt::<Float32Type>().map(|a| format!("{}", a.value(row))),
        _ => ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
            .map(|f| f.value(row).to_string())
            .ok(),
    };
    Some(text.unwrap_or_default())
}

/// The first `columns` cells of a row, comma-separated (for messages).
pub fn render_row(batch: &RecordBatch, row: usize, columns: usize) -> String {
    (0..columns.min(batch.num_columns()))
        .map(|c| cell(batch, c, row).unwrap_or_else(|| "NULL".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn to_csv(table: &Table) -> String {
    let names: Vec<String> = table.schema.fields().iter().map(|f| csv_field(f.name())).collect();
    let mut out = names.join(",");
    out.push('\n');
    for batch in table.batches.iter() {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = (0..batch.num_columns())
                .map(|c| cell(batch, c, row).map(|t| csv_field(&t)).unwrap_or_default())
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    out
}

/// At most `limit` rows of `table` from row `offset`, in its order.
pub fn slice(table: &Table, offset: usize, limit: usize) -> Table {
    let (mut skip, mut left) = (offset, limit);
    let mut batches = Vec::new();
    for batch in table.batches.iter() {
        let from = skip.min(batch.num_rows());
        skip -= from;
        let take = (batch.num_rows() - from).min(left);
        left -= take;
        if take > 0 {
            batches.push(batch.slice(from, take));
        }
    }
    Table::new(table.schema.clone(), batches)
}

pub fn to_text_table(table: &Table) -> String {
    let header: Vec<String> = table.schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in table.batches.iter() {
        for row in 0..batch.num_rows() {
            rows.push((0..batch.num_columns()).map(|c| cell(batch, c, row).unwrap_or_else(|| "NULL".into())).collect());
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header);
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&format!("({} row{})\n", rows.len(), if rows.len() == 1 { "" } else { "s" }));
    out
}

/// Rows as JSON objects; numbers stay numbers, timestamps become text.
pub fn to_json_rows(table: &Table) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut out = Vec::with_capacity(table.num_rows());
    for batch in table.batches.iter() {
        for row in 0..batch.num_rows() {
            let mut object = serde_json::Map::new();
            for (c, field) in batch.schema().fields().iter().enumerate() {
                object.insert(field.name().clone(), json_cell(batch, c, row));
            }
            out.push(object);
        }
    }
    out
}

/// One cell as JSON: numbers stay numbers (NaN and infinities become text), timestamps text.
pub fn json_cell(batch: &RecordBatch, column: usize, row: usize) -> serde_json::Value {
    match (cell(batch, column, row), batch.schema().field(column).data_type()) {
        (None, _) => serde_json::Value::Null,
        (Some(text), t) if t.is_numeric() => serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        (Some(text), DataType::Boolean) => serde_json::Value::Bool(text == "true"),
        (Some(text), _) => serde_json::Value::String(text),
    }
}
