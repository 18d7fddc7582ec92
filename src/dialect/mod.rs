//! What DuckDB-flavoured SQL needs on DataFusion. Models and ad-hoc queries both go through
//! [`session`], so a query typed in the CLI means what the same text means inside a model.
//!
//! The parser runs in DataFusion's DuckDB mode (`group by all`, `* exclude (...)`); UDFs add the
//! functions DataFusion lacks (`date_diff`); an analyzer rule fixes operator meanings
//! ([`semantics`]).

mod date_diff;
mod lateral_alias;
mod order_by_all;
mod semantics;
mod text;

use std::sync::Arc;

use datafusion::config::Dialect;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;

pub use date_diff::DatePart;
pub use text::{double_text, timestamp_text};

/// Schema every table lives in, as in dbt-duckdb's default target.
pub const DEFAULT_SCHEMA: &str = "main";
pub const DEFAULT_CATALOG: &str = "memory";

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

/// A fresh DataFusion context speaking `dialect`, with no tables registered.
pub fn session(dialect: SqlDialect) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(default_parallelism())
        .with_default_catalog_and_schema(DEFAULT_CATALOG, DEFAULT_SCHEMA)
        .with_information_schema(true);
    if dialect == SqlDialect::Duckdb {
        config.options_mut().sql_parser.dialect = Dialect::DuckDB;
    }
    let ctx = SessionContext::new_with_config(config);
    if dialect == SqlDialect::Duckdb {
        let text = Arc::new(ScalarUDF::from(text::DuckdbText::new()));
        ctx.register_udf(ScalarUDF::from(date_diff::DateDiff::new()));
        ctx.register_udf(text.as_ref().clone());
        ctx.add_analyzer_rule(Arc::new(semantics::DuckdbSemantics::new(text)));
    }
    ctx
}

/// Plans `sql` like `SessionContext::sql`, and where DuckDB would resolve a column through an
/// earlier select alias (see `lateral_alias`) or order by all output columns (see
/// `order_by_all`), does so too.
pub async fn sql(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<DataFrame> {
    let first = ctx.sql(sql).await;
    let Err(error) = &first else { return first };
    let message = error.to_string();
    let unknown_field = message.contains("No field named");
    if !unknown_field && !message.contains("ORDER BY ALL") {
        return first;
    }
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let Ok(mut statement) = state.sql_to_statement(sql, &dialect) else { return first };
    if unknown_field {
        let Statement::Statement(inner) = &mut statement else { return first };
        lateral_alias::resolve(inner);
    }
    // After the aliases are resolved, since spelling out ORDER BY ALL plans the query once.
    if let Some(rewritten) = order_by_all::rewrite(ctx, statement.clone()).await {
        statement = rewritten;
    }
    match state.statement_to_plan(statement).await {
        Ok(plan) => ctx.execute_logical_plan(plan).await,
        Err(_) => first,
    }
}
