//! Types in casts as DuckDB reads them. DuckDB's TIMESTAMP holds microseconds; DataFusion's SQL
//! `TIMESTAMP` is nanoseconds: a `cast(x as timestamp)`, `x::timestamp` or `timestamp '…'`
//! without a precision of its own is read as `TIMESTAMP(6)`, so what a model casts has the type
//! DuckDB gives it (and the type trip files and seeds already have). `character varying(n)`
//! and `character(n)`, which DataFusion does not know, are DuckDB's VARCHAR (whose length is
//! never kept): dbt writes them for text columns (`Column.data_type`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{DataType, Expr, Statement, visit_expressions_mut};

pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        let data_type = match expr {
            Expr::Cast { data_type, .. } => data_type,
            Expr::TypedString(typed) => &mut typed.data_type,
            _ => return ControlFlow::<()>::Continue(()),
        };
        match data_type {
            DataType::Timestamp(precision @ None, _) => *precision = Some(6),
            DataType::CharacterVarying(_) | DataType::CharVarying(_) | DataType::Character(_) => *data_type = DataType::Varchar(None),
            _ => {}
        }
        ControlFlow::Continue(())
    });
}
