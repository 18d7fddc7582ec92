//! An analyzer rule that gives typed expressions DuckDB's meaning where DataFusion's differs.
//! It runs after type coercion, so every operand's type is known:
//! - `int / int` is a double in DuckDB (`sum(x) / count(*)` is an average, not a truncation);
//! - `cast(timestamp | double as varchar)` uses DuckDB's text form (see `text`).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, ScalarUDF, cast,
};
use datafusion::optimizer::AnalyzerRule;

use super::coercion::is_text;
use super::text::DuckdbText;

#[derive(Debug)]
pub struct DuckdbSemantics {
    text: Arc<ScalarUDF>,
}

impl DuckdbSemantics {
    pub fn new(text: Arc<ScalarUDF>) -> Self {
        DuckdbSemantics { text }
    }

    fn rewrite(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let type_of = |e: &Expr| e.get_type(schema).ok();
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Divide, right })
                if type_of(&left).is_some_and(|t| divides_to_double(&t))
                    && type_of(&right).is_some_and(|t| divides_to_double(&t)) =>
            {
                Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(cast(*left, DataType::Float64)),
                    Operator::Divide,
                    Box::new(cast(*right, DataType::Float64)),
                ))))
            }
            Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field })
                if is_text(field.data_type()) && type_of(&inner).is_some_and(|t| DuckdbText::needed_for(&t)) =>
            {
                let data_type = field.data_type().clone();
                let rendered = Expr::ScalarFunction(ScalarFunction::new_udf(
                    Arc::clone(&self.text),
                    vec![*inner],
                ));
                // Keep the requested string flavour (Utf8View, LargeUtf8) for the parent's sake.
                Ok(Transformed::yes(if data_type == DataType::Utf8 {
                    rendered
                } else {
                    cast(rendered, data_type)
                }))
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

fn divides_to_double(data_type: &DataType) -> bool {
    data_type.is_integer() || matches!(data_type, DataType::Decimal128(..) | DataType::Decimal256(..))
}

impl AnalyzerRule for DuckdbSemantics {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            // Nodes above refer to this node's columns by name (an aggregate's output is named
            // after its expression), so rewritten expressions keep their original names.
            let names = NamePreserver::new(&node);
            let rewritten = node.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(|e| self.rewrite(e, &schema)).map(|t| t.update_data(|e| name.restore(e)))
            })?;
            // A rewritten expression can change a column's type (int → double), which every
            // node above must see: recompute schemas on the way up.
            rewritten.map_data(|node| node.recompute_schema())
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "duckdb_semantics"
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::dialect::csv;

    #[tokio::test]
    async fn rewritten_aggregates_keep_their_names() {
        // An aggregate's output column is named after its expression; the projection above
        // must still find it once the cast inside becomes DuckDB's text.
        let got = csv("select string_agg(cast(t as varchar), ',' order by cast(t as varchar)) as s, sum(n) / count(*) as avg \
                       from (values (timestamp '2023-03-01 10:00:00', 1), (timestamp '2023-03-02 00:00:00', 2)) v(t, n)")
            .await;
        assert_eq!(got, "s,avg\n\"2023-03-01 10:00:00,2023-03-02 00:00:00\",1.5\n");
    }
}
