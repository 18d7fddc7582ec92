//! The warehouse: every named relation (raw tables, model tables, views) as immutable Arrow
//! batches. Cloning a warehouse is cheap (the batches are shared), which is how a run stays
//! atomic: it works on a clone and the caller keeps the clone only if every step succeeded.

mod pruning;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result, describe_datafusion};
use crate::limits::Limit;
use crate::sql::dialect::{self, DEFAULT_CATALOG, SqlDialect};
use pruning::{PrunedTable, TimeRanges};

/// `schema.name`, both lower-case, as DuckDB and dbt-duckdb address relations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct RelationName {
    pub schema: String,
    pub name: String,
}

impl RelationName {
    pub fn new(schema: &str, name: &str) -> Self {
        RelationName {
            schema: schema.to_ascii_lowercase(),
            name: name.to_ascii_lowercase(),
        }
    }

    /// A relation in the default schema.
    pub fn main(name: &str) -> Self {
        RelationName::new(dialect::DEFAULT_SCHEMA, name)
    }

    /// The quoted form compiled SQL uses: `"main"."stg_orders"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.name)
    }

    fn reference(&self) -> TableReference {
        TableReference::partial(self.schema.as_str(), self.name.as_str())
    }
}

impl fmt::Display for RelationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A materialized table: its schema and rows. Tables never change; a new version is a new
/// table with a new `version` number, which is what state saving compares.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: SchemaRef,
    pub batches: Arc<Vec<RecordBatch>>,
    pub version: u64,
    /// Each batch's range of every time column, for scans that skip batches; shared by the
    /// table's clones, so each column's is computed once per version.
    ranges: Arc<TimeRanges>,
}

impl Table {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static VERSIONS: AtomicU64 = AtomicU64::new(1);
        Table {
            ranges: Arc::new(TimeRanges::new(schema.fields().len())),
            schema,
            batches: Arc::new(batches.into_iter().filter(|b| b.num_rows() > 0).collect()),
            version: VERSIONS.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[derive(Debug, Clone)]
pub enum Relation {
    Table(Table),
    /// A view keeps its compiled SQL and is planned again whenever it is read.
    View { sql: String },
}

/// Extra names under which a relation can be read (`raw.orders` for `main.orders`), as a
/// project's sources declare them.
pub type Aliases = BTreeMap<RelationName, RelationName>;

#[derive(Debug, Clone, Default)]
pub struct Warehouse {
    relations: BTreeMap<RelationName, Relation>,
}

impl Warehouse {
    pub fn get(&self, name: &RelationName) -> Option<&Relation> {
        self.relations.get(name)
    }

    pub fn table(&self, name: &RelationName) -> Option<&Table> {
        match self.relations.get(name) {
            Some(Relation::Table(table)) => Some(table),
            _ => None,
        }
    }

    pub fn contains(&self, name: &RelationName) -> bool {
        self.relations.contains_key(name)
    }

    pub fn relations(&self) -> impl Iterator<Item = (&RelationName, &Relation)> {
        self.relations.iter()
    }

    pub fn put_table(&mut self, name: RelationName, table: Table) {
        self.relations.insert(name, Relation::Table(table));
    }

    pub fn put_view(&mut self, name: RelationName, sql: String) {
        self.relations.insert(name, Relation::View { sql });
    }

    pub fn remove(&mut self, name: &RelationName) -> Option<Relation> {
        self.relations.remove(name)
    }

    /// A DataFusion context in which every relation (and alias) can be read by name.
    pub async fn context(&self, dialect: SqlDialect, aliases: &Aliases) -> Result<SessionContext> {
        let ctx = dialect::session(dialect).map_err(|e| Error::Query(describe_datafusion(&e)))?;
        let parallelism = ctx.copied_config().target_partitions();
        let catalog = ctx
            .catalog(DEFAULT_CATALOG)
            .ok_or_else(|| Error::Query("the default catalog is missing".into()))?;
        let all_names = self.relations.keys().chain(aliases.keys());
        for name in all_names {
            if catalog.schema(&name.schema).is_none() {
                catalog
                    .register_schema(&name.schema, Arc::new(MemorySchemaProvider::new()))
                    .map_err(|e| Error::Query(describe_datafusion(&e)))?;
            }
        }
        for (name, relation) in &self.relations {
            if let Relation::Table(table) = relation {
                register_table(&ctx, name, table, parallelism)?;
                for (alias, target) in aliases {
                    if target == name {
                        register_table(&ctx, alias, table, parallelism)?;
                    }
                }
            }
        }
        // Views may read other views: register them until no more can be. A view that cannot
        // be planned (its upstream was dropped) is left out, so it fails only where it is read.
        let mut pending: Vec<(&RelationName, &String)> = self
            .relations
            .iter()
            .filter_map(|(n, r)| match r {
                Relation::View { sql } => Some((n, sql)),
                Relation::Table(_) => None,
            })
            .collect();
        loop {
            let before = pending.len();
            let mut failed = Vec::new();
            for (name, sql) in pending {
                match dialect::sql(&ctx, sql).await {
                    Ok(df) => {
                        ctx.register_table(name.reference(), df.into_view())
                            .map_err(|e| Error::Query(describe_datafusion(&e)))?;
                    }
                    Err(_) => failed.push((name, sql)),
                }
            }
            if failed.is_empty() || failed.len() == before {
                break;
            }
            pending = failed;
        }
        Ok(ctx)
    }
}

fn register_table(
    ctx: &SessionContext,
    name: &RelationName,
    table: &Table,
    parallelism: usize,
) -> Result<()> {
    let provider = PrunedTable {
        schema: Arc::clone(&table.schema),
        batches: Arc::clone(&table.batches),
        ranges: Arc::clone(&table.ranges),
        parallelism,
    };
    ctx.register_table(name.reference(), Arc::new(provider))
        .map_err(|e| Error::Query(describe_datafusion(&e)))?;
    Ok(())
}

/// `batch`'s column `name` as the type Backfill wrote it (`as_type` is a checked downcast such
/// as `as_primitive_opt`): tables come back from saved state, which may not be what this
/// version wrote, so a column of another type is an error, never a panic.
pub fn typed_column<'a, T>(
    batch: &'a RecordBatch,
    name: &str,
    as_type: impl FnOnce(&'a ArrayRef) -> Option<&'a T>,
) -> std::result::Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(as_type)
        .ok_or_else(|| format!("no column {name} of the type Backfill writes"))
}

/// Runs a data frame to completion and returns its rows as a table.
pub async fn collect(df: DataFrame) -> std::result::Result<Table, datafusion::error::DataFusionError> {
    Ok(collect_with_plan(df).await?.0)
}

/// Runs `df`; also returns DataFusion's physical plan with each operator's metrics (rows
/// produced, time), as a learner reads what a run cost.
pub async fn collect_with_plan(df: DataFrame) -> std::result::Result<(Table, String), datafusion::error::DataFusionError> {
    let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let batches = collect_bounded(Arc::clone(&plan), task).await?;
    let metrics = datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref())
        .indent(true)
        .to_string();
    // Execution may refine the plan's schema (nullability); the batches' own is the truth.
    let schema = batches.first().map_or(planned, |b| b.schema());
    Ok((Table::new(schema, batches), metrics))
}

/// The plan's rows, failing as the memory pool does once they hold more than
/// [`Limit::QueryMemory`]: the pool bounds what operators hold, not the result they return.
async fn collect_bounded(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
) -> std::result::Result<Vec<RecordBatch>, DataFusionError> {
    let mut stream = execute_stream(plan, task)?;
    let mut batches = Vec::new();
    let mut bytes = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        bytes = bytes.saturating_add(batch.get_array_memory_size() as u64);
        if bytes > Limit::QueryMemory.max() {
            return Err(DataFusionError::ResourcesExhausted(format!("the result holds more than {bytes} bytes")));
        }
        batches.push(batch);
    }
    Ok(batches)
}
