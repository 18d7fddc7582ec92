//! Types DuckDB decides otherwise than DataFusion, set on the planned query before DataFusion's
//! type coercion runs, so what they flow into (`case`, `[1, 2]`, `1 + 1`, `values`, a union)
//! follows:
//! - an integer literal that fits in 32 bits is an INTEGER (DataFusion's is a BIGINT): `select
//!   1 as id` makes an INTEGER column in dbt-duckdb, and beside a BIGINT it still widens. Left
//!   as they are: `LIMIT`/`OFFSET`, and whatever an aggregate or window function holds
//!   (`count(*)` is `count(1)` to DataFusion, and DuckDB's `sum` of an INTEGER is a HUGEINT,
//!   which DataFusion has not: a BIGINT is the nearer answer);
//! - a string's length or a position in it is a BIGINT (DataFusion's is an INT);
//! - `now()` (`current_timestamp`) is a TIMESTAMP WITH TIME ZONE in microseconds, in UTC
//!   (DataFusion's is a timestamp without one, in nanoseconds);
//! - a union's column that is text in one input and a date or a number in another is text
//!   (DataFusion's would be the date or number).

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Union, Values, cast};

use super::SESSION_TIME_ZONE;

/// The type DuckDB's function of this name gives where DataFusion's gives another.
fn duckdb_return_type(function: &str) -> Option<DataType> {
    match function {
        "character_length" | "length" | "char_length" | "strpos" => Some(DataType::Int64),
        "now" => Some(DataType::Timestamp(TimeUnit::Microsecond, Some(SESSION_TIME_ZONE.into()))),
        _ => None,
    }
}

/// `plan` with its types as DuckDB decides them.
pub fn duckdb(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Limit(_) => Ok(Transformed::no(node)),
        // Values name their columns themselves: only their types follow the rows.
        LogicalPlan::Values(Values { schema, values }) => {
            let rows = values.into_iter().map(|row| row.into_iter().map(retype).collect::<Result<Vec<_>>>());
            let rows = rows.collect::<Result<Vec<_>>>()?;
            let narrowed = rows.iter().flatten().any(|t| t.transformed);
            let rows = rows.into_iter().map(|row| row.into_iter().map(|t| t.data).collect()).collect();
            if !narrowed {
                return Ok(Transformed::no(LogicalPlan::Values(Values { schema, values: rows })));
            }
            LogicalPlanBuilder::values(rows)?.build().map(Transformed::yes)
        }
        node => {
            // Nodes above refer to this node's columns by name (`select 1` is a column named
            // after its literal), so a retyped expression keeps its original name.
            let names = NamePreserver::new(&node);
            let rewritten = node.map_expressions(|expr| {
                let name = names.save(&expr);
                retype(expr).map(|t| t.update_data(|e| name.restore(e)))
            })?;
            rewritten.map_data(|node| match node {
                LogicalPlan::Union(Union { inputs, .. }) => union(inputs).map(LogicalPlan::Union),
                node => node.recompute_schema(),
            })
        }
    })
    .map(|t| t.data)
}

/// A union of `inputs` typed from them (its schema is otherwise kept as planned until
/// coercion, which starts from it), with each column that is text in one input and something
/// else in another cast to text in every input.
fn union(inputs: Vec<Arc<LogicalPlan>>) -> Result<Union> {
    let width = inputs.first().map_or(0, |input| input.schema().fields().len());
    let text: Vec<bool> = (0..width)
        .map(|i| {
            let types: Vec<&DataType> = inputs.iter().filter_map(|input| input.schema().fields().get(i).map(|f| f.data_type())).collect();
            types.iter().any(|t| is_text(t)) && types.iter().any(|t| !is_text(t) && !t.is_null())
        })
        .collect();
    if !text.contains(&true) {
        return Union::try_new_with_loose_types(inputs);
    }
    let inputs = inputs.into_iter().map(|input| {
        let columns = input.schema().iter().zip(&text).map(|((qualifier, field), &text)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            if text && !is_text(field.data_type()) {
                cast(column, DataType::Utf8).alias_qualified(qualifier.cloned(), field.name())
            } else {
                column
            }
        });
        let columns: Vec<Expr> = columns.collect();
        LogicalPlanBuilder::from(Arc::unwrap_or_clone(input)).project(columns)?.build().map(Arc::new)
    });
    Union::try_new_with_loose_types(inputs.collect::<Result<_>>()?)
}

pub(super) fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

fn retype(expr: Expr) -> Result<Transformed<Expr>> {
    expr.transform_down(|e| match e {
        Expr::AggregateFunction(_) | Expr::WindowFunction(_) => Ok(Transformed::new(e, false, TreeNodeRecursion::Jump)),
        Expr::ScalarFunction(ScalarFunction { func, args }) => match duckdb_return_type(func.name()) {
            // Cast once, then not visited again: its arguments are retyped here.
            Some(data_type) => {
                let args = args.into_iter().map(|arg| retype(arg).map(|t| t.data)).collect::<Result<_>>()?;
                let call = Expr::ScalarFunction(ScalarFunction { func, args });
                Ok(Transformed::new(cast(call, data_type), true, TreeNodeRecursion::Jump))
            }
            None => Ok(Transformed::no(Expr::ScalarFunction(ScalarFunction { func, args }))),
        },
        Expr::Literal(ScalarValue::Int64(Some(value)), metadata) => match i32::try_from(value) {
            Ok(value) => Ok(Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(value)), metadata))),
            Err(_) => Ok(Transformed::no(Expr::Literal(ScalarValue::Int64(Some(value)), metadata))),
        },
        other => Ok(Transformed::no(other)),
    })
}

#[cfg(test)]
mod tests {
    use crate::sql::dialect::csv;

    #[tokio::test]
    async fn literals_that_fit_32_bits_are_integers_as_in_duckdb() {
        let got = csv(
            "select arrow_typeof(1) as one, arrow_typeof(3000000000) as big, arrow_typeof(1 + 1) as sum, \
             arrow_typeof(case when true then 1 else 0 end) as choice, arrow_typeof([1, 2]) as list, \
             arrow_typeof(cast(7 as bigint) + 1) as wide, arrow_typeof(-5) as negative",
        )
        .await;
        assert_eq!(got, "one,big,sum,choice,list,wide,negative\nInt32,Int64,Int32,Int32,List(Int32),Int64,Int32\n");
    }

    #[tokio::test]
    async fn narrowed_columns_keep_their_names_and_flow_through_queries() {
        let got = csv(
            "with t as (select 1 as id, 2, 10 as n union all select 2, 3, 3000000000) \
             select arrow_typeof(id) as id_type, arrow_typeof(n) as n_type, id from t order by 3",
        )
        .await;
        assert_eq!(got, "id_type,n_type,id\nInt32,Int64,1\nInt32,Int64,2\n");
        let got = csv("select arrow_typeof(column1) as a, arrow_typeof(column2) as b from (values (1, 5), (2, 3000000000))").await;
        assert_eq!(got, "a,b\nInt32,Int64\nInt32,Int64\n");
    }

    #[tokio::test]
    async fn a_union_of_text_and_dates_or_numbers_is_text() {
        let got = csv(
            "select arrow_typeof(d) as d_type, d, arrow_typeof(n) as n_type from \
             (select cast('2022-02-14' as date) as d, 1 as n union all select '2020-02-12', 'two' \
              union all select null, null) order by d",
        )
        .await;
        assert_eq!(got, "d_type,d,n_type\nUtf8,2020-02-12,Utf8\nUtf8,2022-02-14,Utf8\nUtf8,,Utf8\n");
        let got = csv("select arrow_typeof(d) as t from (select cast('2022-02-14' as date) as d union all select null) limit 1").await;
        assert_eq!(got, "t\nDate32\n");
    }

    #[tokio::test]
    async fn limits_ordinals_aggregates_and_functions_taking_bigints_still_plan() {
        let got = csv(
            "select x % 2 as parity, count(*) as n, sum(1) as ones, arrow_typeof(sum(1)) as sum_type, \
             max(substr('abcdef', 2, 3)) as s, max(round(x / 3, 2)) as r, max([10, 20, 30][2]) as e, \
             max(l) as l, max(x // 2) as d \
             from (select x, lag(x, 1) over (order by x) as l from generate_series(1, 5) g(x)) \
             group by 1 order by 1 limit 1 offset 1",
        )
        .await;
        assert_eq!(got, "parity,n,ones,sum_type,s,r,e,l,d\n1,3,3,Int64,bcd,1.67,20,4,2\n");
    }

    #[tokio::test]
    async fn now_is_a_timestamp_with_time_zone_in_microseconds() {
        let got = csv(
            "select arrow_typeof(now()) as now, arrow_typeof(current_timestamp) as current, \
             timestamp '2020-01-01 00:00:00' < now() as past, arrow_typeof(now()::timestamp) as naive, \
             cast(cast(timestamp '2023-03-04 05:06:07.5' as timestamptz) as varchar) as text",
        )
        .await;
        let utc = r#""Timestamp(µs, ""UTC"")""#;
        assert_eq!(got, format!("now,current,past,naive,text\n{utc},{utc},true,Timestamp(µs),2023-03-04 05:06:07.5+00\n"));
    }

    #[tokio::test]
    async fn lengths_and_positions_are_bigints_as_in_duckdb() {
        let got = csv("select arrow_typeof(length('abc')) as l, arrow_typeof(position('b' in 'abc')) as p, length('abc') + 1 as n").await;
        assert_eq!(got, "l,p,n\nInt64,Int64,4\n");
    }
}
