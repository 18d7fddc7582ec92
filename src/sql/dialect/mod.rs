//! What DuckDB-flavoured SQL needs on DataFusion. Models and ad-hoc queries both go through
//! [`session`], so a query typed in the CLI means what the same text means inside a model.
//!
//! The parser runs in DataFusion's DuckDB mode (`group by all`, `* exclude (...)`); UDFs add the
//! functions DataFusion lacks (`date_diff`); operators DataFusion plans otherwise (`//`,
//! `n * interval`, date ± interval) are planned by their operands' types ([`operators`]); the
//! types DuckDB gives literals, lengths and unions are set before DataFusion's coercion
//! ([`coercion`]), and an analyzer rule fixes the meanings of the rest ([`semantics`]).

mod coercion;
mod comparison_args;
mod date_diff;
mod depth;
mod lateral_alias;
mod list_aggregate;
mod operators;
mod order_by_all;
mod semantics;
mod series_column;
mod text;
mod cast_types;

use std::sync::Arc;

use datafusion::config::{ConfigNonZeroUsize, Dialect};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::dialect_from_str;

use crate::error::{SqlFailure, describe_datafusion};
use crate::limits::Limit;

pub use date_diff::DatePart;
pub use text::{double_text, timestamp_text};

/// Schema every table lives in, as in dbt-duckdb's default target.
pub const DEFAULT_SCHEMA: &str = "main";
pub const DEFAULT_CATALOG: &str = "memory";
/// DuckDB's session time zone, as dbt-duckdb runs it on a UTC machine: what a TIMESTAMPTZ is
/// kept and written in (its text says `+00`).
const SESSION_TIME_ZONE: &str = "UTC";

/// The SQL flavour a project's models are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlDialect {
    /// DuckDB's semantics, as the course's models assume.
    #[default]
    Duckdb,
    /// DataFusion's own semantics, untouched.
    Datafusion,
}

/// How many partitions DataFusion may split work into: one on wasm (no threads, and some
/// operators would spawn tasks), the machine's cores natively.
pub fn default_parallelism() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// A fresh DataFusion context speaking `dialect`, with no tables registered. Its sorts, joins
/// and aggregates share one pool of [`Limit::QueryMemory`] and never spill to disk: a query
/// that needs more fails with that limit instead of exhausting the tab or the machine.
pub fn session(dialect: SqlDialect) -> datafusion::error::Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(default_parallelism())
        .with_default_catalog_and_schema(DEFAULT_CATALOG, DEFAULT_SCHEMA)
        .with_information_schema(true);
    if dialect == SqlDialect::Duckdb {
        config.options_mut().sql_parser.dialect = Dialect::DuckDB;
        config.options_mut().execution.time_zone = Some(SESSION_TIME_ZONE.into());
    }
    // `sql` measures nesting before parsing; the parser's own bound (it counts up to a few
    // steps per level) is only a backstop behind it, so it must not refuse less.
    let depth = usize::try_from(Limit::SqlDepth.max()).unwrap_or(usize::MAX);
    config.options_mut().sql_parser.recursion_limit = ConfigNonZeroUsize::try_new(depth.saturating_mul(4))?;
    let memory = usize::try_from(Limit::QueryMemory.max()).unwrap_or(usize::MAX);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(memory)))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
        .build_arc()?;
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    if dialect == SqlDialect::Duckdb {
        let text = Arc::new(ScalarUDF::from(text::DuckdbText::new()));
        ctx.register_udf(ScalarUDF::from(date_diff::DateDiff::new()));
        ctx.register_udf(text.as_ref().clone());
        ctx.add_analyzer_rule(Arc::new(semantics::DuckdbSemantics::new(text)));
        ctx.register_expr_planner(Arc::new(operators::DuckdbOperators::new()))?;
        // DuckDB's names for functions DataFusion has under another (dbt-duckdb's cross-database
        // macros write them: `dbt.split_part` is `string_split(…)[n]`).
        for (duckdb, datafusion) in [("string_split", "string_to_array")] {
            if let Some(function) = ctx.state().scalar_functions().get(datafusion).cloned() {
                ctx.register_udf(function.as_ref().clone().with_aliases([duckdb]));
            }
        }
        // `dbt.any_value` is `arbitrary(…)`.
        for (duckdb, datafusion) in [("arbitrary", "any_value")] {
            if let Some(function) = ctx.state().aggregate_functions().get(datafusion).cloned() {
                ctx.register_udaf(function.as_ref().clone().with_aliases([duckdb]));
            }
        }
    }
    Ok(ctx)
}

/// Plans `sql`, the one way every model, query and test reaches DataFusion. It must be one
/// query (`SELECT`, or `WITH … SELECT`) that only reads: no DDL, DML, `COPY … TO` or `SET`, so
/// nothing written in a model, a query or a share link reaches the file system, the network
/// or the session. A statement nested deeper than [`Limit::SqlDepth`] is refused before it is
/// parsed. Where DuckDB would resolve a column through an earlier select alias (see
/// `lateral_alias`) or order by all output columns (see `order_by_all`), so does this.
pub async fn sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame, SqlFailure> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    if let Some(parser_dialect) = dialect_from_str(dialect) {
        check_depth(depth::depth(sql, parser_dialect.as_ref()))?;
    }
    let mut statement = state.sql_to_statement(sql, &dialect).map_err(|e| SqlFailure::of(&e))?;
    let is_query = matches!(&statement, Statement::Statement(inner) if matches!(**inner, ast::Statement::Query(_)));
    if !is_query {
        return Err(SqlFailure::Message(READ_ONLY.into()));
    }
    if let (Dialect::DuckDB, Statement::Statement(inner)) = (dialect, &mut statement) {
        comparison_args::rewrite(inner);
        series_column::rewrite(inner);
        cast_types::rewrite(inner);
        list_aggregate::rewrite(inner)?;
    }
    let first = plan(ctx, statement.clone()).await;
    let Err(error) = &first else { return first };
    let unknown_field = matches!(error, SqlFailure::UnknownColumn { .. });
    if !unknown_field && !order_by_all::present(&statement) {
        return first;
    }
    if unknown_field {
        let Statement::Statement(inner) = &mut statement else { return first };
        lateral_alias::resolve(inner)?;
    }
    // After the aliases are resolved, since spelling out ORDER BY ALL plans the query once.
    if let Some(rewritten) = order_by_all::rewrite(ctx, statement.clone()).await {
        statement = rewritten;
    }
    match plan(ctx, statement).await {
        Ok(df) => Ok(df),
        Err(SqlFailure::Limit { limit, value }) => Err(SqlFailure::Limit { limit, value }),
        Err(SqlFailure::UnknownColumn { .. } | SqlFailure::Message(_)) => first,
    }
}

const READ_ONLY: &str = "only a query (SELECT, or WITH … SELECT) can run here: statements that create, change, copy or set something are refused";

/// Fails when a statement's measured depth is over [`Limit::SqlDepth`].
fn check_depth(depth: Option<u64>) -> Result<(), SqlFailure> {
    match depth {
        Some(depth) if depth > Limit::SqlDepth.max() => Err(SqlFailure::Limit { limit: Limit::SqlDepth, value: Some(depth) }),
        _ => Ok(()),
    }
}

/// Plans a parsed statement, refusing any plan that is not read-only (a query can still carry
/// `INSERT` in its body).
async fn plan(ctx: &SessionContext, statement: Statement) -> Result<DataFrame, SqlFailure> {
    let failure = |e: datafusion::error::DataFusionError| SqlFailure::of(&e);
    let state = ctx.state();
    let plan = state.statement_to_plan(statement).await.map_err(failure)?;
    let plan = match state.config().options().sql_parser.dialect {
        Dialect::DuckDB => coercion::duckdb(plan).map_err(failure)?,
        _ => plan,
    };
    let read_only = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    read_only.verify_plan(&plan).map_err(|e| SqlFailure::Message(format!("{READ_ONLY} ({})", describe_datafusion(&e))))?;
    ctx.execute_logical_plan(plan).await.map_err(failure)
}

/// A query's result in DuckDB's dialect, as CSV: what the dialect's tests compare.
#[cfg(test)]
async fn csv(query: &str) -> String {
    let ctx = session(SqlDialect::Duckdb).unwrap_or_else(|e| panic!("{e}"));
    let df = sql(&ctx, query).await.unwrap_or_else(|e| panic!("{query}: {e}"));
    crate::sql::query::to_csv(&crate::sql::warehouse::collect(df).await.unwrap_or_else(|e| panic!("{query}: {e}")))
}
