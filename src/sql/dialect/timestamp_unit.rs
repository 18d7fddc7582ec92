//! DuckDB's TIMESTAMP holds microseconds; DataFusion's SQL `TIMESTAMP` is nanoseconds. A
//! `cast(x as timestamp)`, `x::timestamp` or `timestamp '…'` without a precision of its own is
//! read as `TIMESTAMP(6)`, so what a model casts has the type DuckDB gives it (and the type
//! trip files and seeds already have).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{DataType, Expr, Statement, visit_expressions_mut};

pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        let data_type = match expr {
            Expr::Cast { data_type, .. } => data_type,
            Expr::TypedString(typed) => &mut typed.data_type,
            _ => return ControlFlow::<()>::Continue(()),
        };
        if let DataType::Timestamp(precision @ None, _) = data_type {
            *precision = Some(6);
        }
        ControlFlow::Continue(())
    });
}
