//! CSV read as text: every column a nullable string, for the caller to type (TLC files in
//! `sources`, seeds with dbt's type inference in `dbt`).

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

/// A CSV with a header row as all-text columns (nullable); the caller decides the types.
pub fn read_as_text(bytes: &[u8]) -> std::result::Result<Vec<RecordBatch>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let header = text.lines().next().unwrap_or_default();
    let fields: Vec<Field> = header
        .split(',')
        .map(|h| Field::new(h.trim().trim_matches('"'), DataType::Utf8, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = datafusion::arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .with_batch_size(64 * 1024)
        .build(Cursor::new(bytes))
        .map_err(|e| format!("unreadable CSV: {e}"))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable CSV: {e}"))
}
