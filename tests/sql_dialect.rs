//! The SQL dialect's facts as data: every `tests/sql/*.slt` file (sqllogictest) runs through
//! `sql::dialect`, the one way models and queries reach DataFusion. The expected rows are
//! DuckDB's, each value as DuckDB casts it to text; the parity suite re-checks them against
//! DuckDB (`tests/parity/slt.py`, which also rewrites them with `--write`).

use std::path::{Path, PathBuf};

use backfill::dialect::{self, SqlDialect, double_text};
use backfill::query;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::prelude::SessionContext;
use sqllogictest::harness::{Arguments, Failed, Trial, run};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

/// A query's failure, as the page or the CLI would show it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// A fresh DuckDB-dialect context per file: nothing one file does is seen by another.
struct Dialect(SessionContext);

#[async_trait::async_trait]
impl AsyncDB for Dialect {
    type Error = Refused;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Refused> {
        let frame = dialect::sql(&self.0, sql).await.map_err(|e| Refused(e.to_string()))?;
        let columns = frame.schema().fields().len();
        let batches = frame.collect().await.map_err(|e| Refused(e.to_string()))?;
        let rows = batches
            .iter()
            .flat_map(|batch| (0..batch.num_rows()).map(move |row| (0..columns).map(|c| duckdb_varchar(batch, c, row)).collect()))
            .collect();
        Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; columns], rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "backfill"
    }
}

/// A value as DuckDB's `cast(v as varchar)` writes it (the form the files' rows are in): as the
/// CLI shows it, but doubles in DuckDB's text (`1.0`, not `1`).
fn duckdb_varchar(batch: &RecordBatch, column: usize, row: usize) -> String {
    let double = batch.column(column).as_primitive_opt::<Float64Type>().filter(|a| a.is_valid(row));
    match double {
        Some(doubles) => double_text(doubles.value(row)),
        None => query::cell(batch, column, row).unwrap_or_else(|| "NULL".into()),
    }
}

fn run_file(path: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| Failed::from(e.to_string()))?;
    runtime.block_on(async {
        let mut runner = Runner::new(|| async { dialect::session(SqlDialect::Duckdb).map(Dialect).map_err(|e| Refused(e.to_string())) });
        runner.run_file_async(path).await.map_err(|e| Failed::from(e.display(false).to_string()))
    })
}

fn main() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "the dialect's facts are in {}", folder.display());
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Trial::test(name, move || run_file(&path))
        })
        .collect();
    run(&Arguments::from_args(), trials).exit();
}
