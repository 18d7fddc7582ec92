//! DuckDB lets a select item use an alias defined earlier in the same select list
//! (`zone as zone_name, zone_name like '%Airport' as is_airport`); DataFusion does not. This
//! substitutes such references with the aliased expression. It is applied only to a query
//! that failed to plan for lack of a column, so a real column of that name still wins, as in
//! DuckDB.
//!
//! Substituting copies: `a as x1, x1 + x1 as x2, x2 + x2 as x3, …` doubles at every alias. The
//! size and depth each alias expands to are computed from the ones before it, so a list that
//! would grow past [`Limit::RenderedBytes`] or [`Limit::SqlDepth`] is refused before anything
//! is copied: the work stays proportional to what is written out.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, SelectItem, SetExpr, Statement, TableFactor, Visit, Visitor, visit_expressions_mut,
};

use crate::error::SqlFailure;
use crate::limits::Limit;

pub fn resolve(statement: &mut Statement) -> Result<(), SqlFailure> {
    match statement {
        Statement::Query(q) => query(q),
        _ => Ok(()),
    }
}

fn query(q: &mut Query) -> Result<(), SqlFailure> {
    if let Some(with) = &mut q.with {
        for cte in &mut with.cte_tables {
            query(&mut cte.query)?;
        }
    }
    set_expr(&mut q.body)
}

fn set_expr(body: &mut SetExpr) -> Result<(), SqlFailure> {
    match body {
        SetExpr::Select(select) => {
            for from in &mut select.from {
                factor(&mut from.relation)?;
                for join in &mut from.joins {
                    factor(&mut join.relation)?;
                }
            }
            let mut aliases: Vec<Alias> = Vec::new();
            for item in &mut select.projection {
                match item {
                    SelectItem::UnnamedExpr(expr) => {
                        substitute(expr, &aliases)?;
                    }
                    SelectItem::ExprWithAlias { expr, alias } => {
                        let expanded = substitute(expr, &aliases)?;
                        aliases.push(Alias { name: alias.value.to_lowercase(), expr: expr.clone(), expanded });
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        SetExpr::Query(q) => query(q),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr(left)?;
            set_expr(right)
        }
        _ => Ok(()),
    }
}

fn factor(relation: &mut TableFactor) -> Result<(), SqlFailure> {
    match relation {
        TableFactor::Derived { subquery, .. } => query(subquery),
        _ => Ok(()),
    }
}

/// An alias earlier in the select list, with its expression already substituted.
struct Alias {
    name: String,
    expr: Expr,
    expanded: Expanded,
}

/// What an expression becomes once every alias in it is substituted.
#[derive(Clone, Copy, Default)]
struct Expanded {
    /// Bytes of its SQL text.
    bytes: u64,
    /// Levels of nested expressions.
    depth: u64,
}

/// Substitutes the aliases `expr` reads, after checking what that makes of it; returns that.
fn substitute(expr: &mut Expr, aliases: &[Alias]) -> Result<Expanded, SqlFailure> {
    let expanded = expand(expr, aliases);
    let over = |limit: Limit, value: u64| (value > limit.max()).then_some(SqlFailure::Limit { limit, value: Some(value) });
    if let Some(failure) = over(Limit::SqlDepth, expanded.depth).or_else(|| over(Limit::RenderedBytes, expanded.bytes)) {
        return Err(failure);
    }
    if aliases.is_empty() {
        return Ok(expanded);
    }
    let _ = visit_expressions_mut(expr, |e| {
        if let Some(alias) = referenced(e, aliases) {
            *e = Expr::Nested(Box::new(alias.expr.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(expanded)
}

/// The alias an identifier names (the latest one of that name), if any.
fn referenced<'a>(expr: &Expr, aliases: &'a [Alias]) -> Option<&'a Alias> {
    let Expr::Identifier(ident) = expr else { return None };
    let name = ident.value.to_lowercase();
    aliases.iter().rev().find(|alias| alias.name == name)
}

/// The size and depth `expr` would have with its aliases substituted, from theirs: no copy.
fn expand(expr: &Expr, aliases: &[Alias]) -> Expanded {
    struct Walk<'a> {
        aliases: &'a [Alias],
        level: u64,
        found: Expanded,
    }
    impl Visitor for Walk<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            self.level += 1;
            self.found.depth = self.found.depth.max(self.level);
            if let Some(alias) = referenced(expr, self.aliases) {
                // `(expression)` in place of the name.
                let name = alias.name.len() as u64;
                self.found.bytes = self.found.bytes.saturating_add(alias.expanded.bytes + 2).saturating_sub(name);
                self.found.depth = self.found.depth.max(self.level.saturating_add(alias.expanded.depth));
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
            self.level -= 1;
            ControlFlow::Continue(())
        }
    }
    let mut walk = Walk { aliases, level: 0, found: Expanded { bytes: expr.to_string().len() as u64, depth: 0 } };
    let _ = expr.visit(&mut walk);
    walk.found
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::DuckDbDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn resolved(sql: &str) -> Result<String, SqlFailure> {
        let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).map_err(|e| SqlFailure::Message(e.to_string()))?;
        let statement = statements.first_mut().ok_or_else(|| SqlFailure::Message("no statement".into()))?;
        resolve(statement)?;
        Ok(statement.to_string())
    }

    #[test]
    fn earlier_aliases_are_substituted() {
        assert_eq!(
            resolved("select zone as zone_name, zone_name like '%Airport' as is_airport from z").ok().as_deref(),
            Some("SELECT zone AS zone_name, (zone) LIKE '%Airport' AS is_airport FROM z")
        );
    }

    /// 26 aliases each reading the one before twice would expand to 2^26 copies; refused at once.
    #[test]
    fn doubling_aliases_are_refused_before_they_are_copied() {
        let mut items = vec!["42 as x0".to_string()];
        items.extend((1..=26).map(|i| format!("x{p} + x{p} as x{i}", p = i - 1)));
        let sql = format!("select {} from t", items.join(", "));
        let failure = resolved(&sql).expect_err("2^26 copies");
        assert!(
            matches!(failure, SqlFailure::Limit { limit: Limit::RenderedBytes, value: Some(v) } if v > Limit::RenderedBytes.max()),
            "{failure:?}"
        );
        // Ten doublings are only about a thousand copies: resolved as DuckDB would.
        let sql = format!("select {} from t", items[..=10].join(", "));
        let text = resolved(&sql).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.matches("42").count(), 1 + (1..=10).map(|i| 1 << i).sum::<usize>());
    }

    /// A long chain of aliases each nesting the one before is as deep as the chain.
    #[test]
    fn chained_aliases_deeper_than_the_limit_are_refused() {
        let chain = |n: u64| {
            let mut items = vec!["1 as x0".to_string()];
            items.extend((1..=n).map(|i| format!("x{} + 1 as x{i}", i - 1)));
            format!("select {} from t", items.join(", "))
        };
        let failure = resolved(&chain(Limit::SqlDepth.max())).expect_err("too deep");
        assert!(matches!(failure, SqlFailure::Limit { limit: Limit::SqlDepth, .. }), "{failure:?}");
        assert!(resolved(&chain(Limit::SqlDepth.max() / 4)).is_ok());
    }
}
