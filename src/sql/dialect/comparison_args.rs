//! In a function call DuckDB reads `f(a = b)` as the comparison `a = b` (dbt-duckdb's
//! `bool_or` macro writes `bool_or(val1 = val2)`), where sqlparser in DuckDB mode reads a
//! named argument `a` with the value `b`, which DataFusion then refuses or misreads. Named
//! arguments written with `=` become comparisons again; `:=` and `=>` stay named.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments, Statement, visit_expressions_mut,
};

pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Function(function) = expr
            && let FunctionArguments::List(list) = &mut function.args
        {
            for arg in list.args.iter_mut() {
                if let FunctionArg::Named { name, arg: FunctionArgExpr::Expr(value), operator: FunctionArgOperator::Equals } = arg {
                    let comparison = Expr::BinaryOp {
                        left: Box::new(Expr::Identifier(name.clone())),
                        op: BinaryOperator::Eq,
                        right: Box::new(value.clone()),
                    };
                    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(comparison));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}
