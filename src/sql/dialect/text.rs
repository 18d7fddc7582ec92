//! DuckDB's text form of timestamps and doubles (`cast(x as varchar)`). Arrow renders them
//! differently (`2023-03-01T00:05:12`, `1`), and the surrogate key hashes these strings, so
//! every `trip_id` depends on getting them byte-for-byte right.

use std::fmt::Write;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike};
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
    let mut text = String::with_capacity(26);
    push_timestamp(&mut text, micros).then_some(text)
}

/// Appends `micros` as [`timestamp_text`] writes it; false, with nothing appended, for a
/// timestamp chrono cannot represent. The digits are written by hand: chrono's `format` parses
/// its pattern on every call, and a surrogate key renders two timestamps a row.
fn push_timestamp(text: &mut String, micros: i64) -> bool {
    let Some(at) = DateTime::from_timestamp_micros(micros) else { return false };
    let at = at.naive_utc();
    match u32::try_from(at.year()) {
        Ok(year) if year <= 9999 => {
            push_digits(text, year, 4);
            for (separator, value) in [('-', at.month()), ('-', at.day()), (' ', at.hour()), (':', at.minute()), (':', at.second())] {
                text.push(separator);
                push_digits(text, value, 2);
            }
        }
        // Years chrono writes with a sign.
        _ => {
            let _ = write!(text, "{}", at.format("%Y-%m-%d %H:%M:%S"));
        }
    }
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        text.push('.');
        push_digits(text, fraction as u32, 6);
        while text.ends_with('0') {
            text.pop();
        }
    }
    true
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        text.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
    }
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
                let mut text = String::with_capacity(32);
                for i in 0..micros.len() {
                    text.clear();
                    if !micros.is_null(i) && push_timestamp(&mut text, micros.value(i)) {
                        text.push_str(offset);
                        out.append_value(&text);
                    } else {
                        out.append_null();
                    }
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

    /// The hand-written digits say what chrono's format says, for every year it can hold.
    #[test]
    fn timestamps_render_as_chrono_formats_them() {
        let chrono_text = |micros: i64| {
            let at = DateTime::from_timestamp_micros(micros)?.naive_utc();
            let mut text = at.format("%Y-%m-%d %H:%M:%S").to_string();
            let fraction = micros.rem_euclid(1_000_000);
            if fraction != 0 {
                text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
            }
            Some(text)
        };
        // Every i64 in steps of ~8 years, then 1970 to 2070 in steps of ~2 hours (odd
        // microseconds, so fractions of every length come up).
        let year = 365 * 86_400 * 1_000_000_i64;
        let coarse = std::iter::successors(Some(i64::MIN), |m| m.checked_add(7_919 * year / 1_000 + 123_457));
        let fine = (0..400_000_i64).map(|i| i * 7_919_000_017);
        let mut checked = 0;
        for micros in coarse.chain(fine) {
            assert_eq!(timestamp_text(micros), chrono_text(micros), "{micros}");
            checked += 1;
        }
        assert!(checked > 470_000, "{checked}");
        for exact in [0, -1, 1, 253_402_300_799_999_999, 253_402_300_800_000_000, -62_167_219_200_000_000, -62_167_219_200_000_001] {
            assert_eq!(timestamp_text(exact), chrono_text(exact), "{exact}");
        }
    }
}
