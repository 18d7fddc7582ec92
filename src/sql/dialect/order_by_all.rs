//! DuckDB's `ORDER BY ALL`: order by every output column, left to right. DataFusion only
//! accepts it when every select item is a plain column, so the clause is rewritten to the
//! output ordinals (`ORDER BY 1, 2, …`) with the same direction and null order.

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{self, Expr, OrderByExpr, OrderByKind, Value};

/// Whether the statement orders by all: DataFusion's error then has no type to know it by.
pub fn present(statement: &Statement) -> bool {
    matches!(statement, Statement::Statement(inner) if matches!(inner.as_ref(),
        ast::Statement::Query(query) if query.order_by.as_ref().is_some_and(|order| matches!(order.kind, OrderByKind::All(_)))))
}

/// The statement with `ORDER BY ALL` spelled out, or `None` if it has none.
pub async fn rewrite(ctx: &SessionContext, mut statement: Statement) -> Option<Statement> {
    let Statement::Statement(inner) = &mut statement else { return None };
    let ast::Statement::Query(query) = inner.as_mut() else { return None };
    let order = query.order_by.as_ref()?;
    let OrderByKind::All(options) = &order.kind else { return None };
    let options = *options;
    // The width of the output: plan the query without its ordering.
    let mut unordered = query.clone();
    unordered.order_by = None;
    let width_statement = Statement::Statement(Box::new(ast::Statement::Query(unordered)));
    let state = ctx.state();
    let plan = state.statement_to_plan(width_statement).await.ok()?;
    let width = plan.schema().fields().len();
    let ordinals = (1..=width)
        .map(|i| OrderByExpr {
            expr: Expr::value(Value::Number(i.to_string(), false)),
            options,
            with_fill: None,
        })
        .collect();
    if let Some(order) = query.order_by.as_mut() {
        order.kind = OrderByKind::Expressions(ordinals);
    }
    Some(statement)
}
