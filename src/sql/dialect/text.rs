//! DuckDB's text form of timestamps and doubles (`cast(x as varchar)`). Arrow renders them
//! differently (`2023-03-01T00:05:12`, `1`), and the surrogate key hashes these strings, so
//! every `trip_id` depends on getting them byte-for-byte right.

use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `2023-03-01 00:05:12`, with a fraction only when there is one, trailing zeros dropped.
pub fn timestamp_text(micros: i64) -> Option<String> {
    let at = DateTime::from_timestamp_micros(micros)?.naive_utc();
    let fraction = micros.rem_euclid(1_000_000);
    let mut text = at.format("%Y-%m-%d %H:%M:%S").to_string();
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    Some(text)
}

/// Shortest round-trip digits, positional between 1e-5 and 1e16, else scientific with a
/// signed two-digit exponent: `1.0`, `0.0001`, `1.5e-05`, `1e+16`.
pub fn double_text(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let text = value.to_string();
        if text.contains('.') { text } else { format!("{text}.0") }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// `duckdb_text(x)`: what the dialect layer puts where DuckDB would cast a timestamp or a double
/// to text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DuckdbText {
    signature: Signature,
}

impl DuckdbText {
    pub const NAME: &'static str = "duckdb_text";

    pub fn new() -> Self {
        DuckdbText {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    /// Whether values of this type render differently in DuckDB than in Arrow.
    pub fn needed_for(data_type: &DataType) -> bool {
        matches!(
            data_type,
            DataType::Timestamp(..) | DataType::Float64 | DataType::Float32
        )
    }
}

impl ScalarUDFImpl for DuckdbText {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [input] = arrays.as_slice() else {
            return exec_err!("duckdb_text takes one argument");
        };
        let mut out = StringBuilder::with_capacity(input.len(), input.len() * 20);
        match input.data_type() {
            DataType::Timestamp(_, zone) => {
                // Written in the session's time zone (`SESSION_TIME_ZONE`, UTC), as DuckDB
                // writes a TIMESTAMPTZ, its offset `+00`.
                let micros = cast(input, &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))?;
                let Some(micros) = micros.as_primitive_opt::<TimestampMicrosecondType>() else {
                    return exec_err!("duckdb_text: timestamps did not cast to microseconds");
                };
                let offset = if zone.is_some() { "+00" } else { "" };
                for i in 0..micros.len() {
                    let text = (!micros.is_null(i)).then(|| timestamp_text(micros.value(i))).flatten();
                    out.append_option(text.map(|t| t + offset));
                }
            }
            DataType::Float64 | DataType::Float32 => {
                let doubles = cast(input, &DataType::Float64)?;
                let Some(doubles) = doubles.as_primitive_opt::<Float64Type>() else {
                    return exec_err!("duckdb_text: numbers did not cast to doubles");
                };
                for i in 0..doubles.len() {
                    out.append_option((!doubles.is_null(i)).then(|| double_text(doubles.value(i))));
                }
            }
            other => return exec_err!("duckdb_text does not render {other}"),
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are DuckDB 2.0's `cast(... as varchar)` of the same values.
    #[test]
    fn doubles_render_like_duckdb() {
        for (value, text) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456.0, "123456.0"),
            (123456789.123, "123456789.123"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(double_text(value), text, "{value}");
        }
    }

    #[test]
    fn timestamps_render_like_duckdb() {
        let at = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
                .unwrap_or_default()
        };
        assert_eq!(timestamp_text(at("2023-03-01 00:05:12")).as_deref(), Some("2023-03-01 00:05:12"));
        assert_eq!(timestamp_text(at("2023-03-01 00:05:12.5")).as_deref(), Some("2023-03-01 00:05:12.5"));
        assert_eq!(timestamp_text(at("2023-03-01 00:05:12.120")).as_deref(), Some("2023-03-01 00:05:12.12"));
        assert_eq!(timestamp_text(at("1969-12-31 23:59:59.5")).as_deref(), Some("1969-12-31 23:59:59.5"));
    }
}
