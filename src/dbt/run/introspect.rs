//! Compiling a model or a data test whose template asks the warehouse (dbt's `run_query`, `statement`, the
//! adapter's columns and relations): render, run what it asked, render again with the answers,
//! until it asks nothing new.

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::dbt::project::{DataTest, Project};
use crate::dbt::template::{self, Asked, CompileContext, CompiledModel, CompiledTest, Introspection, QueryAnswer};
use crate::error::Result;
use crate::limits::Limit;
use crate::sql::dialect;
use crate::sql::query::{duckdb_type_name, json_cell};
use crate::sql::warehouse::{Warehouse, collect};

/// `model` compiled with what `warehouse` answers to its template; one that asks nothing is
/// rendered once.
pub async fn compile_live(project: &Project, model: &str, ctx: &CompileContext, warehouse: &Warehouse) -> Result<CompiledModel> {
    let place = format!("{} (model {model})", project.model(model).map(|m| m.path.as_str()).unwrap_or(model));
    live(project, ctx, warehouse, &place, |live| template::compile(project, model, live), |compiled| &compiled.asked).await
}

/// `test` compiled with what `warehouse` answers to its template.
pub async fn compile_test_live(project: &Project, test: &DataTest, ctx: &CompileContext, warehouse: &Warehouse) -> Result<CompiledTest> {
    let place = format!("{} (test {})", test.path, test.name);
    live(project, ctx, warehouse, &place, |live| template::compile_test(project, test, live), |compiled| &compiled.asked).await
}

/// What `render` renders once every query it asks is answered.
async fn live<T>(
    project: &Project,
    ctx: &CompileContext,
    warehouse: &Warehouse,
    place: &str,
    render: impl Fn(&CompileContext) -> Result<T>,
    asked: impl Fn(&T) -> &Asked,
) -> Result<T> {
    let mut known = Introspection { relations: warehouse.relations().map(|(name, _)| name.clone()).collect(), ..Introspection::default() };
    let mut queries = 0u64;
    let mut session = None;
    loop {
        let compiled = render(&CompileContext { introspection: Some(Arc::new(known.clone())), ..ctx.clone() })?;
        // Asking only for a relation is answered already: the warehouse's relations were given.
        let questions = asked(&compiled).queries.clone();
        if questions.is_empty() {
            return Ok(compiled);
        }
        queries += questions.len() as u64;
        Limit::TemplateQueries.check(queries, place)?;
        // One context for every question of the compile: the warehouse does not change meanwhile.
        let ctx = match session.take() {
            Some(ctx) => ctx,
            None => warehouse.context(project.dialect, &project.aliases()).await?,
        };
        for sql in questions {
            let answer = answer(&ctx, &sql, place).await?;
            known.answers.insert(sql, answer);
        }
        session = Some(ctx);
    }
}

/// What `sql` returns, or why it failed (the template reports that where it asked); over
/// [`Limit::TemplateQueryRows`] rows is an error of the compile.
async fn answer(ctx: &SessionContext, sql: &str, place: &str) -> Result<std::result::Result<QueryAnswer, String>> {
    let frame = match dialect::sql(ctx, sql).await {
        Ok(frame) => frame,
        Err(failure) => return Ok(Err(failure.to_string())),
    };
    let most = Limit::TemplateQueryRows.max() as usize;
    let frame = match frame.limit(0, Some(most + 1)) {
        Ok(frame) => frame,
        Err(e) => return Ok(Err(crate::error::describe_datafusion(&e))),
    };
    let table = match collect(frame).await {
        Ok(table) => table,
        Err(e) => return Ok(Err(crate::error::describe_datafusion(&e))),
    };
    let rows = table.num_rows();
    if rows > most {
        return Err(Limit::TemplateQueryRows.exceeded(None, format!("{place}: run_query(\"{}\")", sql.trim())));
    }
    let columns = table.schema.fields().iter().map(|f| (f.name().clone(), duckdb_type_name(f.data_type()))).collect();
    let mut answer = QueryAnswer { columns, rows: Vec::with_capacity(rows) };
    for batch in table.batches.iter() {
        for row in 0..batch.num_rows() {
            answer.rows.push((0..batch.num_columns()).map(|c| json_cell(batch, c, row)).collect());
        }
    }
    Ok(Ok(answer))
}
