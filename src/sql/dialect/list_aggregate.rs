//! DuckDB's `list_aggr(list, 'name', …)` (or `list_aggregate`, `array_aggr`,
//! `array_aggregate`) runs an aggregate over each list; dbt-duckdb's `listagg` with a limit
//! writes `list_aggr((array_agg(…))[1:n], 'string_agg', separator)`. DataFusion has no such
//! call but has a list function for each common aggregate, which the call becomes:
//! `string_agg` is `array_to_string` (`,` unless a separator is given; nulls skipped, as
//! `string_agg` skips them), and `sum`, `avg`, `min`, `max`, `product` are `array_sum` and
//! the like. Any other aggregate is refused, naming the ones there are.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Statement, Value,
    visit_expressions_mut,
};

use crate::error::SqlFailure;

const NAMES: [&str; 4] = ["list_aggr", "list_aggregate", "array_aggr", "array_aggregate"];

/// DuckDB's aggregate → DataFusion's list function doing it on one list.
const AGGREGATES: [(&str, &str); 7] = [
    ("string_agg", "array_to_string"),
    ("sum", "array_sum"),
    ("avg", "array_avg"),
    ("mean", "array_avg"),
    ("min", "array_min"),
    ("max", "array_max"),
    ("product", "array_product"),
];

pub fn rewrite(statement: &mut Statement) -> Result<(), SqlFailure> {
    let outcome = visit_expressions_mut(statement, |expr| {
        let Expr::Function(function) = expr else { return ControlFlow::Continue(()) };
        let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice() else { return ControlFlow::Continue(()) };
        if !NAMES.contains(&name.value.to_lowercase().as_str()) {
            return ControlFlow::Continue(());
        }
        let called = name.value.clone();
        let FunctionArguments::List(list) = &mut function.args else { return ControlFlow::Continue(()) };
        let aggregate = match list.args.get(1) {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value)))) => match &value.value {
                Value::SingleQuotedString(text) => Some(text.to_lowercase()),
                _ => None,
            },
            _ => None,
        };
        let Some(replacement) = aggregate.as_deref().and_then(|a| AGGREGATES.iter().find(|(duckdb, _)| *duckdb == a)) else {
            let known: Vec<&str> = AGGREGATES.iter().map(|(duckdb, _)| *duckdb).collect();
            return ControlFlow::Break(format!(
                "{called}(list, 'aggregate', …) needs the aggregate's name as a string; the aggregates it runs here are {}",
                known.join(", ")
            ));
        };
        list.args.remove(1);
        if replacement.0 == "string_agg" && list.args.len() == 1 {
            list.args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(Value::SingleQuotedString(",".into())))));
        }
        function.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(replacement.1))]);
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Break(message) => Err(SqlFailure::Message(message)),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::dialect::{SqlDialect, csv, session, sql};

    #[tokio::test]
    async fn list_aggregates_run_the_aggregate_over_each_list() {
        let got = csv(
            "select list_aggr(['b', null, 'a'], 'string_agg', '_|_') as joined, list_aggr(['b', 'a'], 'STRING_AGG') as commas, \
             list_aggregate([1, 2, 4], 'sum') as total, array_aggr([3, 1], 'min') as least, \
             list_aggr((array_agg(x order by x desc))[1:2], 'string_agg', ', ') as top_two \
             from (values ('p'), ('q'), ('r')) v(x)",
        )
        .await;
        assert_eq!(got, "joined,commas,total,least,top_two\nb_|_a,\"b,a\",7,1,\"r, q\"\n");
    }

    #[tokio::test]
    async fn an_aggregate_it_cannot_run_is_named() {
        let ctx = session(SqlDialect::Duckdb).unwrap_or_else(|e| panic!("{e}"));
        let error = sql(&ctx, "select list_aggr([1], 'histogram')").await.err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("list_aggr(list, 'aggregate', …) needs the aggregate's name as a string; the aggregates it runs here are string_agg, sum, avg, mean, min, max, product")
        );
    }
}
