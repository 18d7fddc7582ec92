//! DuckDB's `date_diff(part, start, end)` (alias `datediff`): the number of `part` boundaries
//! crossed between two timestamps, not the truncated length of the interval. Models compute
//! durations with it, so its exact counting decides every duration-based metric.

use std::sync::Arc;

use chrono::{DateTime, Datelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// The date parts DuckDB accepts in `date_diff`, after resolving its many spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    IsoYear,
    Decade,
    Century,
    Millennium,
}

impl DatePart {
    /// Resolves a part name the way DuckDB does (case-insensitive, singular or plural, short
    /// forms); `None` for a name DuckDB rejects too.
    pub fn parse(name: &str) -> Option<DatePart> {
        use DatePart::*;
        let part = match name.trim().to_ascii_lowercase().as_str() {
            "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "usecond" | "useconds" => {
                Microsecond
            }
            "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "msecond" | "mseconds" => {
                Millisecond
            }
            "second" | "seconds" | "s" | "sec" | "secs" | "epoch" => Second,
            "minute" | "minutes" | "m" | "min" | "mins" => Minute,
            "hour" | "hours" | "h" | "hr" | "hrs" => Hour,
            "day" | "days" | "d" | "dayofmonth" | "dow" | "dayofweek" | "isodow" | "doy"
            | "dayofyear" | "julian" | "weekday" => Day,
            "week" | "weeks" | "w" | "weekofyear" | "yearweek" => Week,
            "month" | "months" | "mon" | "mons" => Month,
            "quarter" | "quarters" => Quarter,
            "year" | "years" | "y" | "yr" | "yrs" => Year,
            "isoyear" => IsoYear,
            "decade" | "decades" | "dec" | "decs" => Decade,
            "century" | "centuries" | "cent" | "c" => Century,
            "millennium" | "millennia" | "millenium" | "mil" | "mils" => Millennium,
            _ => return None,
        };
        Some(part)
    }

    /// Boundaries of this part crossed going from `start` to `end` (microseconds since the
    /// epoch). `None` only for timestamps chrono cannot represent.
    pub fn diff(self, start: i64, end: i64) -> Option<i64> {
        use DatePart::*;
        let floor_diff = |unit: i64| end.div_euclid(unit) - start.div_euclid(unit);
        Some(match self {
            Microsecond => end - start,
            Millisecond => floor_diff(1_000),
            Second => floor_diff(MICROS_PER_SECOND),
            Minute => floor_diff(60 * MICROS_PER_SECOND),
            Hour => floor_diff(3_600 * MICROS_PER_SECOND),
            Day => floor_diff(MICROS_PER_DAY),
            // DuckDB counts whole weeks of days here, truncating towards zero.
            Week => floor_diff(MICROS_PER_DAY) / 7,
            Month | Quarter | Year | IsoYear | Decade | Century | Millennium => {
                let (a, b) = (civil(start)?, civil(end)?);
                let months = |d: &DateTime<chrono::Utc>| d.year() as i64 * 12 + d.month0() as i64;
                let years = |d: &DateTime<chrono::Utc>| d.year() as i64;
                match self {
                    Month => months(&b) - months(&a),
                    Quarter => months(&b).div_euclid(3) - months(&a).div_euclid(3),
                    Year => years(&b) - years(&a),
                    IsoYear => b.iso_week().year() as i64 - a.iso_week().year() as i64,
                    Decade => years(&b).div_euclid(10) - years(&a).div_euclid(10),
                    Century => years(&b).div_euclid(100) - years(&a).div_euclid(100),
                    _ => years(&b).div_euclid(1000) - years(&a).div_euclid(1000),
                }
            }
        })
    }
}

fn civil(micros: i64) -> Option<DateTime<chrono::Utc>> {
    DateTime::from_timestamp_micros(micros)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateDiff {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateDiff {
    pub fn new() -> Self {
        DateDiff {
            signature: Signature::any(3, Volatility::Immutable),
            aliases: vec!["datediff".to_string()],
        }
    }
}

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        "date_diff"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [parts, starts, ends] = arrays.as_slice() else {
            return exec_err!("date_diff takes three arguments: part, start, end");
        };
        let parts = cast(parts, &DataType::Utf8)?;
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let starts = cast(starts, &micros)?;
        let ends = cast(ends, &micros)?;
        let (Some(parts), Some(starts), Some(ends)) = (
            parts.as_string_opt::<i32>(),
            starts.as_primitive_opt::<TimestampMicrosecondType>(),
            ends.as_primitive_opt::<TimestampMicrosecondType>(),
        ) else {
            return exec_err!("date_diff: its arguments did not cast to text and timestamps");
        };
        // All-literal arguments come as one row, whatever `rows` says.
        let len = parts.len().min(starts.len()).min(ends.len());
        let mut out = Int64Builder::with_capacity(len);
        // The part is nearly always one literal: parse a name only when it changes.
        let mut resolved: Option<(&str, DatePart)> = None;
        for i in 0..len {
            if parts.is_null(i) || starts.is_null(i) || ends.is_null(i) {
                out.append_null();
                continue;
            }
            let name = parts.value(i);
            let part = match resolved {
                Some((last, part)) if last == name => part,
                _ => match DatePart::parse(name) {
                    Some(part) => {
                        resolved = Some((name, part));
                        part
                    }
                    None => return exec_err!("date_diff: unknown date part '{name}'"),
                },
            };
            out.append_option(part.diff(starts.value(i), ends.value(i)));
        }
        let out: ArrayRef = Arc::new(out.finish());
        if len == 1 && rows != 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::DatePart::{self, *};

    // How each unit counts boundaries is pinned with DuckDB's rows in tests/sql/date_diff.slt.
    #[test]
    fn accepts_duckdb_spellings() {
        for (name, part) in [
            ("minutes", Minute),
            ("MINUTE", Minute),
            ("m", Minute),
            ("mon", Month),
            ("yrs", Year),
            ("us", Microsecond),
            ("epoch", Second),
            ("millennia", Millennium),
        ] {
            assert_eq!(DatePart::parse(name), Some(part), "{name}");
        }
        assert_eq!(DatePart::parse("q"), None);
        assert_eq!(DatePart::parse("fortnight"), None);
    }
}
