//! Scans that skip what a filter rules out. Every table keeps, per batch, the range of each of
//! its timestamp and date columns; a scan filtered on such a column — or on
//! `date_trunc(unit, column)`, as a daily partition's filter is once DataFusion pushes it
//! below the aggregate — reads only the batches whose range can match. A table clustered by
//! its event time (and models built from it keep that order) makes one day's partition read
//! about a day of rows, not the whole history.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

const SECOND: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * SECOND;

/// Per batch, a time column's smallest and largest value in nanoseconds since the epoch
/// (`None` for a batch with no value).
type BatchRanges = Vec<Option<(i64, i64)>>;

/// Per column, its batches' ranges (`None` for a column that is not a time), each computed the
/// first time a scan is filtered on that column: a query pays only for what it prunes.
#[derive(Debug)]
pub struct TimeRanges(Vec<OnceLock<Option<BatchRanges>>>);

impl TimeRanges {
    pub fn new(columns: usize) -> TimeRanges {
        TimeRanges((0..columns).map(|_| OnceLock::new()).collect())
    }

    fn column(&self, column: usize, schema: &SchemaRef, batches: &[RecordBatch]) -> Option<&BatchRanges> {
        let ranges = self.0.get(column)?.get_or_init(|| {
            is_time(schema.field(column).data_type()).then(|| batches.iter().map(|batch| range(batch.column(column).as_ref())).collect())
        });
        ranges.as_ref()
    }
}

/// A table as DataFusion scans it: its batches dealt round-robin into `parallelism`
/// partitions, leaving out the batches the scan's filters rule out.
#[derive(Debug)]
pub struct PrunedTable {
    pub schema: SchemaRef,
    pub batches: Arc<Vec<RecordBatch>>,
    pub ranges: Arc<TimeRanges>,
    pub parallelism: usize,
}

#[async_trait]
impl TableProvider for PrunedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Inexact: DataFusion still applies every filter to the rows of the batches kept.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match bound(f, &self.schema) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let bounds: Vec<Bound> = filters.iter().filter_map(|f| bound(f, &self.schema)).collect();
        let mut partitions = vec![Vec::new(); self.parallelism.max(1)];
        let kept = self.batches.iter().enumerate().filter(|(index, _)| bounds.iter().all(|b| self.may_match(*index, b)));
        for (n, (_, batch)) in kept.enumerate() {
            let slot = n % partitions.len();
            partitions[slot].push(batch.clone());
        }
        let exec: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(&partitions, Arc::clone(&self.schema), projection.cloned())?;
        Ok(exec)
    }
}

impl PrunedTable {
    /// Whether batch `batch` can hold a row that `bound` allows.
    fn may_match(&self, batch: usize, bound: &Bound) -> bool {
        let column = self.ranges.column(bound.column, &self.schema, &self.batches);
        let Some(Some((low, high))) = column.map(|c| c.get(batch).copied().flatten()) else {
            return true;
        };
        bound.low.is_none_or(|l| high >= l) && bound.high.is_none_or(|h| low <= h)
    }
}

/// What a filter says of one time column: `low <= value <= high` in nanoseconds, either end
/// open. Conservative: a batch it rules out has no row the filter keeps.
#[derive(Debug, Clone, PartialEq)]
struct Bound {
    column: usize,
    low: Option<i64>,
    high: Option<i64>,
}

fn bound(filter: &Expr, schema: &SchemaRef) -> Option<Bound> {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (side, op, value) = match (nanos(right), nanos(left)) {
                (Some(value), _) => (left, *op, value),
                (None, Some(value)) => (right, op.swap()?, value),
                (None, None) => return None,
            };
            let (column, widen) = time_side(side, schema)?;
            let (low, high) = match op {
                Operator::Eq => (Some(value), Some(value.checked_add(widen)?)),
                Operator::GtEq => (Some(value), None),
                Operator::Gt => (Some(value.checked_add(1)?), None),
                Operator::LtEq => (None, Some(value.checked_add(widen)?)),
                Operator::Lt => (None, Some(value.checked_sub(1)?.checked_add(widen)?)),
                _ => return None,
            };
            Some(Bound { column, low, high })
        }
        Expr::Between(Between { expr, negated: false, low, high }) => {
            let (column, widen) = time_side(expr, schema)?;
            Some(Bound { column, low: Some(nanos(low)?), high: Some(nanos(high)?.checked_add(widen)?) })
        }
        _ => None,
    }
}

/// The time column an expression reads, and how far past a bound on the expression the
/// column may go: 0 for the column itself; for `date_trunc(unit, column)` up to one unit
/// (the truncated value is at most the column's and at most a unit below it).
fn time_side(expr: &Expr, schema: &SchemaRef) -> Option<(usize, i64)> {
    match expr {
        Expr::Column(column) => {
            let index = schema.index_of(&column.name).ok()?;
            is_time(schema.field(index).data_type()).then_some((index, 0))
        }
        Expr::ScalarFunction(function) if function.name() == "date_trunc" => match function.args.as_slice() {
            [Expr::Literal(ScalarValue::Utf8(Some(unit)) | ScalarValue::Utf8View(Some(unit)), _), column] => {
                let (index, _) = time_side(column, schema)?;
                Some((index, unit_length(unit)?))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The longest a `date_trunc` unit can be, in nanoseconds.
fn unit_length(unit: &str) -> Option<i64> {
    let length = match unit.to_ascii_lowercase().trim_end_matches('s') {
        "microsecond" => 1_000,
        "millisecond" => 1_000_000,
        "second" => SECOND,
        "minute" => 60 * SECOND,
        "hour" => 3_600 * SECOND,
        "day" => DAY,
        "week" => 7 * DAY,
        "month" => 31 * DAY,
        "quarter" => 92 * DAY,
        "year" => 366 * DAY,
        _ => return None,
    };
    Some(length)
}

/// A time literal in nanoseconds since the epoch.
fn nanos(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(SECOND),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::Date32(Some(days)) => i64::from(*days).checked_mul(DAY),
        ScalarValue::Date64(Some(ms)) => ms.checked_mul(1_000_000),
        _ => None,
    }
}

fn is_time(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64)
}

/// The smallest and largest value of a time column, in nanoseconds (saturating: a value past
/// i64's nanoseconds only widens the range).
fn range(array: &dyn Array) -> Option<(i64, i64)> {
    let scaled = |low: i64, high: i64, factor: i64| Some((low.saturating_mul(factor), high.saturating_mul(factor)));
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            let a = array.as_primitive_opt::<TimestampSecondType>()?;
            scaled(min(a)?, max(a)?, SECOND)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = array.as_primitive_opt::<TimestampMillisecondType>()?;
            scaled(min(a)?, max(a)?, 1_000_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let a = array.as_primitive_opt::<TimestampMicrosecondType>()?;
            scaled(min(a)?, max(a)?, 1_000)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            let a = array.as_primitive_opt::<TimestampNanosecondType>()?;
            Some((min(a)?, max(a)?))
        }
        DataType::Date32 => {
            let a = array.as_primitive_opt::<Date32Type>()?;
            scaled(i64::from(min(a)?), i64::from(max(a)?), DAY)
        }
        DataType::Date64 => {
            let a = array.as_primitive_opt::<Date64Type>()?;
            scaled(min(a)?, max(a)?, 1_000_000)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::sql::dialect::{self, SqlDialect};
    use crate::sql::query::to_csv;
    use crate::sql::warehouse::{Aliases, RelationName, Table, Warehouse, collect_with_plan};

    /// Three batches, one per day from 2023-03-01, each with a trip at 10:00 and at 23:00.
    fn warehouse() -> Warehouse {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ordered_at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("id", DataType::Int64, false),
        ]));
        let first_day = 1_677_628_800_000_000; // 2023-03-01 00:00:00 in microseconds
        let batches = (0..3i64)
            .map(|day| {
                let at = |hour: i64| first_day + day * 86_400_000_000 + hour * 3_600_000_000;
                let ordered = TimestampMicrosecondArray::from(vec![at(10), at(23)]);
                let ids = Int64Array::from(vec![day * 10, day * 10 + 1]);
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ordered), Arc::new(ids)]).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let mut warehouse = Warehouse::default();
        warehouse.put_table(RelationName::main("orders"), Table::new(schema, batches));
        warehouse
    }

    /// The rows a query returns, and how many batches its scan read.
    async fn run(sql: &str) -> (String, usize) {
        let ctx = warehouse().context(SqlDialect::Duckdb, &Aliases::new()).await.unwrap_or_else(|e| panic!("{e}"));
        let df = dialect::sql(&ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let (table, plan) = collect_with_plan(df).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let sizes = plan.split("partition_sizes=[").nth(1).and_then(|s| s.split(']').next()).unwrap_or_else(|| panic!("{plan}"));
        let read = sizes.split(", ").filter_map(|n| n.parse::<usize>().ok()).sum();
        (to_csv(&table), read)
    }

    #[tokio::test]
    async fn a_daily_partition_filter_reads_only_its_days() {
        // A daily partition's filter: above an aggregate on date_trunc, pushed down to the scan.
        let sql = "with daily as (select date_trunc('day', ordered_at) as d, count(*) as n from orders group by all) \
                   select * from daily where d between '2023-03-02' and '2023-03-03' order by d";
        let (rows, read) = run(sql).await;
        assert_eq!(rows, "d,n\n2023-03-02 00:00:00,2\n2023-03-03 00:00:00,2\n");
        assert_eq!(read, 2, "the 1st's batch is skipped");
    }

    /// Registering a table computes nothing; a scan filtered on a time column computes that
    /// column's ranges, once for every clone of the table.
    #[tokio::test]
    async fn ranges_are_computed_for_the_filtered_column_only() {
        let warehouse = warehouse();
        let computed = || -> Vec<bool> {
            let table = warehouse.table(&RelationName::main("orders")).unwrap_or_else(|| panic!("no orders"));
            table.ranges.0.iter().map(|column| column.get().is_some()).collect()
        };
        let ctx = warehouse.clone().context(SqlDialect::Duckdb, &Aliases::new()).await.unwrap_or_else(|e| panic!("{e}"));
        for (sql, after) in [
            ("select count(*) from orders where id > 3", [false, false]),
            ("select count(*) from orders where ordered_at < '2023-03-02'", [true, false]),
        ] {
            let df = dialect::sql(&ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            collect_with_plan(df).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_eq!(computed(), after, "{sql}");
        }
    }

    #[tokio::test]
    async fn bounds_on_the_column_skip_batches_and_keep_every_matching_row() {
        for (filter, ids, read) in [
            ("ordered_at >= '2023-03-02 23:00:00'", "11-20-21", 2),
            ("ordered_at < '2023-03-02'", "0-1", 1),
            ("ordered_at = '2023-03-03 10:00:00'", "20", 1),
            ("'2023-03-02 10:00:00' > ordered_at", "0-1", 1),
            ("date_trunc('month', ordered_at) = '2023-03-01'", "0-1-10-11-20-21", 3),
            // Not a bound on a time column: read in full, filtered as ever.
            ("id % 2 = 0", "0-10-20", 3),
        ] {
            let (rows, scanned) = run(&format!("select string_agg(cast(id as varchar), '-' order by id) as ids from orders where {filter}")).await;
            assert_eq!(rows, format!("ids\n{ids}\n"), "{filter}");
            assert_eq!(scanned, read, "{filter}");
        }
    }
}
