//! DuckDB's meaning of operators DataFusion plans otherwise or not at all, decided by their
//! operands' types as the query is planned (an `ExprPlanner`): `a // b` on integers divides and
//! truncates (`7 // 2` is 3; by zero it fails, as in DuckDB 2), on other numbers it is `/`; `n * interval`
//! multiplies every field of the interval (dbt's `dateadd` writes it); a date plus or minus an
//! interval is a timestamp.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, IntervalMonthDayNanoBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    binary_expr,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

#[derive(Debug)]
pub struct DuckdbOperators {
    integer_divide: Arc<ScalarUDF>,
    interval_times: Arc<ScalarUDF>,
}

impl DuckdbOperators {
    pub fn new() -> Self {
        DuckdbOperators {
            integer_divide: Arc::new(ScalarUDF::from(IntegerDivide::new())),
            interval_times: Arc::new(ScalarUDF::from(IntervalTimes::new())),
        }
    }

    fn call(udf: &Arc<ScalarUDF>, args: Vec<Expr>) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(udf), args))
    }
}

impl ExprPlanner for DuckdbOperators {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        // An operand whose type is unknown yet (a column the query lacks) is planned as it is,
        // so its error reads as DataFusion's own.
        let (Ok(left), Ok(right)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let interval = |t: &DataType| matches!(t, DataType::Interval(_));
        let planned = match expr.op {
            BinaryOperator::DuckIntegerDivide if left.is_integer() && right.is_integer() => {
                Self::call(&self.integer_divide, vec![expr.left, expr.right])
            }
            BinaryOperator::DuckIntegerDivide => binary_expr(expr.left, Operator::Divide, expr.right),
            BinaryOperator::Multiply if interval(&left) && right.is_integer() => {
                Self::call(&self.interval_times, vec![expr.left, expr.right])
            }
            BinaryOperator::Multiply if left.is_integer() && interval(&right) => {
                Self::call(&self.interval_times, vec![expr.right, expr.left])
            }
            BinaryOperator::Plus | BinaryOperator::Minus if matches!(left, DataType::Date32) && interval(&right) => {
                let op = if expr.op == BinaryOperator::Plus { Operator::Plus } else { Operator::Minus };
                binary_expr(expr.left.cast_to(&timestamp(), schema)?, op, expr.right)
            }
            BinaryOperator::Plus if interval(&left) && matches!(right, DataType::Date32) => {
                binary_expr(expr.left, Operator::Plus, expr.right.cast_to(&timestamp(), schema)?)
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(planned))
    }
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// Two argument arrays cast to the types given; all-literal arguments come as one row.
fn two(args: ScalarFunctionArgs, name: &str, first: &DataType, second: &DataType) -> Result<(ArrayRef, ArrayRef, usize)> {
    let rows = args.number_rows;
    let arrays = ColumnarValue::values_to_arrays(&args.args)?;
    let [a, b] = arrays.as_slice() else {
        return exec_err!("{name} takes two arguments");
    };
    Ok((cast(a, first)?, cast(b, second)?, rows))
}

/// The result as a scalar when every argument was one (one row, whatever `rows` says).
fn columnar(out: ArrayRef, rows: usize) -> Result<ColumnarValue> {
    if out.len() == 1 && rows != 1 {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
    }
    Ok(ColumnarValue::Array(out))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntegerDivide {
    signature: Signature,
}

impl IntegerDivide {
    fn new() -> Self {
        IntegerDivide { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for IntegerDivide {
    fn name(&self) -> &str {
        "duckdb_integer_divide"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, b, rows) = two(args, "//", &DataType::Int64, &DataType::Int64)?;
        let (a, b) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
        let mut out = Int64Builder::with_capacity(a.len());
        for i in 0..a.len().min(b.len()) {
            if a.is_null(i) || b.is_null(i) {
                out.append_null();
                continue;
            }
            match a.value(i).checked_div(b.value(i)) {
                Some(quotient) => out.append_value(quotient),
                None if b.value(i) == 0 => return exec_err!("division by zero in {} // 0", a.value(i)),
                None => return exec_err!("{} // {} is out of range", a.value(i), b.value(i)),
            }
        }
        columnar(Arc::new(out.finish()), rows)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalTimes {
    signature: Signature,
}

impl IntervalTimes {
    fn new() -> Self {
        IntervalTimes { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for IntervalTimes {
    fn name(&self) -> &str {
        "duckdb_interval_times"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let interval = DataType::Interval(IntervalUnit::MonthDayNano);
        let (a, b, rows) = two(args, "interval * n", &interval, &DataType::Int64)?;
        let (a, b) = (a.as_primitive::<IntervalMonthDayNanoType>(), b.as_primitive::<Int64Type>());
        let mut out = IntervalMonthDayNanoBuilder::with_capacity(a.len());
        for i in 0..a.len().min(b.len()) {
            if a.is_null(i) || b.is_null(i) {
                out.append_null();
                continue;
            }
            let (value, n) = (a.value(i), b.value(i));
            let field = |x: i32| i32::try_from(i64::from(x).checked_mul(n)?).ok();
            match (field(value.months), field(value.days), value.nanoseconds.checked_mul(n)) {
                (Some(months), Some(days), Some(nanoseconds)) => out.append_value(IntervalMonthDayNano { months, days, nanoseconds }),
                _ => return exec_err!("an interval {n} times as long is out of range"),
            }
        }
        columnar(Arc::new(out.finish()), rows)
    }
}
