//! DuckDB lets a select item use an alias defined earlier in the same select list
//! (`zone as zone_name, zone_name like '%Airport' as is_airport`); DataFusion does not. This
//! substitutes such references with the aliased expression. It is applied only to a query
//! that failed to plan for lack of a column, so a real column of that name still wins, as in
//! DuckDB.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, SelectItem, SetExpr, Statement, TableFactor, visit_expressions_mut,
};

pub fn resolve(statement: &mut Statement) {
    if let Statement::Query(q) = statement {
        query(q);
    }
}

fn query(q: &mut Query) {
    if let Some(with) = &mut q.with {
        for cte in &mut with.cte_tables {
            query(&mut cte.query);
        }
    }
    set_expr(&mut q.body);
}

fn set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for from in &mut select.from {
                factor(&mut from.relation);
                for join in &mut from.joins {
                    factor(&mut join.relation);
                }
            }
            let mut aliases: Vec<(String, Expr)> = Vec::new();
            for item in &mut select.projection {
                match item {
                    SelectItem::UnnamedExpr(expr) => substitute(expr, &aliases),
                    SelectItem::ExprWithAlias { expr, alias } => {
                        substitute(expr, &aliases);
                        aliases.push((alias.value.to_lowercase(), expr.clone()));
                    }
                    _ => {}
                }
            }
        }
        SetExpr::Query(q) => query(q),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left);
            set_expr(right);
        }
        _ => {}
    }
}

fn factor(relation: &mut TableFactor) {
    if let TableFactor::Derived { subquery, .. } = relation {
        query(subquery);
    }
}

fn substitute(expr: &mut Expr, aliases: &[(String, Expr)]) {
    if aliases.is_empty() {
        return;
    }
    let _ = visit_expressions_mut(expr, |e| {
        if let Expr::Identifier(ident) = e {
            let name = ident.value.to_lowercase();
            if let Some((_, replacement)) = aliases.iter().rev().find(|(alias, _)| *alias == name) {
                *e = Expr::Nested(Box::new(replacement.clone()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}
