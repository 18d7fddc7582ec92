//! `modules.datetime`, Python's `datetime` module as dbt's Jinja context has it: `datetime`
//! and `date` (constructors, `now`, `utcnow`, `today`, `strptime`, `fromisoformat`,
//! `fromordinal`, `fromtimestamp`, `utcfromtimestamp`; fields, `strftime`, `isoformat`,
//! `date()`, `replace`, `weekday`, `toordinal`, `timestamp`, comparisons), `timedelta` (`days`,
//! `seconds`, `total_seconds()`) and `timezone.utc`. Values print as Python's `str()` does.
//! minijinja has no operators on objects (mitsuhiko/minijinja#721), so `now - timedelta(days=7)`
//! is refused by the template engine; Python's own `date.fromordinal(d.toordinal() - 7)` and
//! `datetime.fromtimestamp(d.timestamp() - 3600)` do that sum on numbers, in dbt too.

use std::cmp::Ordering;
use std::fmt::{self, Write};
use std::sync::Arc;

use chrono::format::StrftimeItems;
use chrono::{Datelike, Duration, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use minijinja::value::{DynObject, Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};

/// The `modules` global: only `datetime` (dbt also has pytz, re and itertools).
pub fn modules() -> Value {
    let datetime = minijinja::context! {
        datetime => Value::from_object(Constructor::DateTime),
        date => Value::from_object(Constructor::Date),
        timedelta => Value::from_object(Constructor::TimeDelta),
        timezone => minijinja::context! { utc => Value::from_object(UtcZone) },
    };
    minijinja::context! { datetime => datetime }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// `datetime.timezone.utc`, as `now(timezone.utc)` takes it.
#[derive(Debug)]
struct UtcZone;

impl Object for UtcZone {
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UTC")
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Constructor {
    DateTime,
    Date,
    TimeDelta,
}

impl Object for Constructor {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match **self {
            Constructor::DateTime => {
                // Python's datetime(year, month, day, hour=0, minute=0, second=0, microsecond=0,
                // tzinfo=None), each field by position or by name.
                let (positional, kwargs) = match args.split_last() {
                    Some((last, rest)) if last.is_kwargs() => (rest, Kwargs::try_from(last.clone())?),
                    _ => (args, Kwargs::from_iter(std::iter::empty::<(String, Value)>())),
                };
                const FIELDS: [&str; 7] = ["year", "month", "day", "hour", "minute", "second", "microsecond"];
                if positional.len() > FIELDS.len() {
                    return Err(invalid("datetime() takes at most 7 fields"));
                }
                let mut fields = [0i64; 7];
                for (i, name) in FIELDS.iter().enumerate() {
                    let value = match positional.get(i) {
                        Some(value) => Some(value.clone()),
                        None => kwargs.get::<Option<Value>>(name)?,
                    };
                    fields[i] = match value {
                        Some(value) => i64::try_from(value).map_err(|_| invalid(format!("datetime(): {name} is not an integer")))?,
                        None if i < 3 => return Err(invalid(format!("datetime(): {name} is required"))),
                        None => 0,
                    };
                }
                let zone: Option<Value> = kwargs.get("tzinfo")?;
                kwargs.assert_all_used()?;
                let field = |i: usize| u32::try_from(fields[i]).ok();
                let date = i32::try_from(fields[0]).ok().zip(field(1)).zip(field(2)).and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d));
                let date = date.ok_or_else(|| invalid(format!("datetime({}, {}, {}): no such day", fields[0], fields[1], fields[2])))?;
                let time = field(3)
                    .zip(field(4))
                    .zip(field(5))
                    .zip(field(6))
                    .and_then(|(((h, mi), s), us)| NaiveTime::from_hms_micro_opt(h, mi, s, us))
                    .ok_or_else(|| invalid("datetime(): hour, minute, second or microsecond out of range"))?;
                match zone {
                    None => Ok(DateTime::naive(date.and_time(time))),
                    Some(zone) if zone.downcast_object_ref::<UtcZone>().is_some() => Ok(DateTime::utc(date.and_time(time))),
                    Some(_) => Err(invalid("datetime(tzinfo=…): only timezone.utc is known")),
                }
            }
            Constructor::Date => {
                let (y, m, d): (i32, u32, u32) = from_args(args)?;
                let date = NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| invalid(format!("date({y}, {m}, {d}): no such day")))?;
                Ok(DateTime::date(date))
            }
            Constructor::TimeDelta => {
                let (days, kwargs): (Option<f64>, Kwargs) = from_args(args)?;
                let part = |name: &str| -> Result<f64, Error> { Ok(kwargs.get::<Option<f64>>(name)?.unwrap_or(0.0)) };
                let micros = (days.unwrap_or(0.0) + part("days")?) * 86_400e6
                    + part("weeks")? * 7.0 * 86_400e6
                    + part("hours")? * 3_600e6
                    + part("minutes")? * 60e6
                    + part("seconds")? * 1e6
                    + part("milliseconds")? * 1e3
                    + part("microseconds")?;
                kwargs.assert_all_used()?;
                // Python allows |days| < 1,000,000,000, but a span held in i64 microseconds ends at
                // about 106,751,991 days: beyond it the cast would saturate to a wrong value.
                if !micros.is_finite() || micros.abs() >= i64::MAX as f64 {
                    return Err(invalid("timedelta(): out of range (|days| must be under 106,751,991)"));
                }
                Ok(Value::from_object(TimeDelta(Duration::microseconds(micros.round() as i64))))
            }
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let date_only = **self == Constructor::Date;
        match (method, **self) {
            ("now", Constructor::DateTime) => {
                let (zone,): (Option<Value>,) = from_args(args)?;
                Ok(match zone {
                    Some(zone) if zone.downcast_object_ref::<UtcZone>().is_some() => DateTime::utc(Utc::now().naive_utc()),
                    Some(_) => return Err(invalid("datetime.now(tz): only timezone.utc is known")),
                    None => DateTime::naive(Local::now().naive_local()),
                })
            }
            ("utcnow", Constructor::DateTime) => Ok(DateTime::naive(Utc::now().naive_utc())),
            ("today", _) if date_only => Ok(DateTime::date(Local::now().date_naive())),
            ("today", _) => Ok(DateTime::naive(Local::now().naive_local())),
            ("strptime", Constructor::DateTime) => {
                let (text, format): (String, String) = from_args(args)?;
                parse(&text, &format).map(DateTime::naive)
            }
            ("fromordinal", _) => {
                let (day,): (i32,) = from_args(args)?;
                let day = NaiveDate::from_num_days_from_ce_opt(day).ok_or_else(|| invalid(format!("fromordinal({day}): out of range")))?;
                Ok(if date_only { DateTime::date(day) } else { DateTime::naive(day.and_time(NaiveTime::MIN)) })
            }
            ("fromtimestamp" | "utcfromtimestamp", _) => {
                let (seconds, zone): (f64, Option<Value>) = from_args(args)?;
                let micros = seconds * 1e6;
                let at = (micros.is_finite() && micros.abs() < 1e17)
                    .then(|| chrono::DateTime::from_timestamp_micros(micros.round() as i64))
                    .flatten()
                    .ok_or_else(|| invalid(format!("{method}({seconds}): out of range")))?;
                Ok(match (method, zone) {
                    (_, Some(zone)) if zone.downcast_object_ref::<UtcZone>().is_some() => DateTime::utc(at.naive_utc()),
                    (_, Some(_)) => return Err(invalid(format!("{method}(ts, tz): only timezone.utc is known"))),
                    ("utcfromtimestamp", None) => DateTime::naive(at.naive_utc()),
                    _ if date_only => DateTime::date(at.with_timezone(&Local).date_naive()),
                    _ => DateTime::naive(at.with_timezone(&Local).naive_local()),
                })
            }
            ("fromisoformat", _) => {
                let (text,): (String,) = from_args(args)?;
                let parsed = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f"))
                    .or_else(|_| NaiveDate::parse_from_str(&text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN)))
                    .map_err(|_| invalid(format!("fromisoformat: `{text}` is not an ISO date or datetime")))?;
                Ok(if date_only { DateTime::date(parsed.date()) } else { DateTime::naive(parsed) })
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// Python's `strptime`: a date alone is its midnight.
fn parse(text: &str, format: &str) -> Result<NaiveDateTime, Error> {
    let format = python_format(format);
    NaiveDateTime::parse_from_str(text, &format)
        .or_else(|_| NaiveDate::parse_from_str(text, &format).map(|d| d.and_time(NaiveTime::MIN)))
        .map_err(|e| invalid(format!("strptime(`{text}`, `{format}`): {e}")))
}

/// A Python format string as chrono reads it: Python's `%f` is six digits.
fn python_format(format: &str) -> String {
    format.replace("%f", "%6f")
}

/// A `datetime` (naive, or in UTC) or a `date`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DateTime {
    at: NaiveDateTime,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Date,
    Naive,
    Utc,
}

impl DateTime {
    fn naive(at: NaiveDateTime) -> Value {
        Value::from_object(DateTime { at, kind: Kind::Naive })
    }

    fn utc(at: NaiveDateTime) -> Value {
        Value::from_object(DateTime { at, kind: Kind::Utc })
    }

    fn date(day: NaiveDate) -> Value {
        Value::from_object(DateTime { at: day.and_time(NaiveTime::MIN), kind: Kind::Date })
    }

    fn with(&self, at: NaiveDateTime) -> Value {
        Value::from_object(DateTime { at, kind: self.kind })
    }

    fn strftime(&self, format: &str) -> Result<String, Error> {
        // A naive value's %z and %Z are empty in Python; chrono cannot format them without a zone.
        let format = match self.kind {
            Kind::Utc => python_format(format).replace("%Z", "UTC").replace("%z", "+0000"),
            Kind::Naive | Kind::Date => python_format(format).replace("%Z", "").replace("%z", ""),
        };
        let items = StrftimeItems::new(&format).parse().map_err(|_| invalid(format!("strftime: `{format}` is not a format")))?;
        let mut out = String::new();
        write!(out, "{}", self.at.format_with_items(items.iter())).map_err(|_| invalid(format!("strftime: cannot format `{format}`")))?;
        Ok(out)
    }

    fn iso(&self, separator: &str) -> String {
        let time = if self.at.nanosecond() == 0 { "%H:%M:%S" } else { "%H:%M:%S%.6f" };
        let zone = if self.kind == Kind::Utc { "+00:00" } else { "" };
        match self.kind {
            Kind::Date => self.at.format("%Y-%m-%d").to_string(),
            Kind::Naive | Kind::Utc => format!("{}{separator}{}{zone}", self.at.format("%Y-%m-%d"), self.at.format(time)),
        }
    }
}

impl Object for DateTime {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let at = self.at;
        Some(Value::from(match key.as_str()? {
            "year" => at.year() as i64,
            "month" => at.month() as i64,
            "day" => at.day() as i64,
            "hour" if self.kind != Kind::Date => at.hour() as i64,
            "minute" if self.kind != Kind::Date => at.minute() as i64,
            "second" if self.kind != Kind::Date => at.second() as i64,
            "microsecond" if self.kind != Kind::Date => (at.nanosecond() / 1_000) as i64,
            _ => return None,
        }))
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                self.strftime(&format).map(Value::from)
            }
            "isoformat" => {
                let (separator,): (Option<String>,) = from_args(args)?;
                Ok(Value::from(self.iso(separator.as_deref().unwrap_or("T"))))
            }
            "date" => Ok(DateTime::date(self.at.date())),
            "weekday" => Ok(Value::from(self.at.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.at.weekday().number_from_monday())),
            "toordinal" => Ok(Value::from(self.at.num_days_from_ce())),
            // A naive datetime is in local time, as Python takes it.
            "timestamp" if self.kind != Kind::Date => {
                let at = match self.kind {
                    Kind::Utc => Some(self.at.and_utc()),
                    _ => Local.from_local_datetime(&self.at).earliest().map(|at| at.with_timezone(&Utc)),
                };
                let at = at.ok_or_else(|| invalid(format!("timestamp(): {} is not a local time", self.iso(" "))))?;
                Ok(Value::from(at.timestamp_micros() as f64 / 1e6))
            }
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let at = self.at;
                let part = |name: &str, now: u32| -> Result<u32, Error> { Ok(kwargs.get::<Option<u32>>(name)?.unwrap_or(now)) };
                let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(at.year());
                let date = NaiveDate::from_ymd_opt(year, part("month", at.month())?, part("day", at.day())?)
                    .ok_or_else(|| invalid("replace(): no such day"))?;
                let time = NaiveTime::from_hms_micro_opt(
                    part("hour", at.hour())?,
                    part("minute", at.minute())?,
                    part("second", at.second())?,
                    part("microsecond", at.nanosecond() / 1_000)?,
                )
                .ok_or_else(|| invalid("replace(): a time field out of range"))?;
                kwargs.assert_all_used()?;
                Ok(self.with(date.and_time(time)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        other.downcast_ref::<DateTime>().filter(|o| o.kind == self.kind).map(|o| self.at.cmp(&o.at))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(" "))
    }
}

/// Python's `timedelta`: whole days, then seconds and microseconds within a day.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TimeDelta(Duration);

impl TimeDelta {
    fn parts(&self) -> (i64, i64, i64) {
        let micros = self.0.num_microseconds().unwrap_or(i64::MAX);
        let days = micros.div_euclid(86_400_000_000);
        let rest = micros.rem_euclid(86_400_000_000);
        (days, rest / 1_000_000, rest % 1_000_000)
    }
}

impl Object for TimeDelta {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, seconds, micros) = self.parts();
        Some(Value::from(match key.as_str()? {
            "days" => days,
            "seconds" => seconds,
            "microseconds" => micros,
            _ => return None,
        }))
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "total_seconds" => {
                let () = from_args(args)?;
                Ok(Value::from(self.0.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        other.downcast_ref::<TimeDelta>().map(|o| self.0.cmp(&o.0))
    }

    /// `1 day, 2:03:04` or `-1 day, 23:59:59.500000`, as Python prints it.
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, seconds, micros) = self.parts();
        if days != 0 {
            write!(f, "{days} day{}, ", if days.abs() == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use minijinja::Environment;

    fn rendered(template: &str) -> Result<String, String> {
        let mut env = Environment::new();
        env.add_global("modules", super::modules());
        env.render_str(template, minijinja::context! {}).map_err(|e| e.to_string())
    }

    #[test]
    fn values_print_and_format_as_python_does() {
        let ok = |t: &str| rendered(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(ok("{{ modules.datetime.datetime(2023, 3, 4, 5, 6, 7) }}"), "2023-03-04 05:06:07");
        assert_eq!(ok("{{ modules.datetime.datetime(2023, 3, 4, minute=5, tzinfo=modules.datetime.timezone.utc) }}"), "2023-03-04 00:05:00+00:00");
        assert_eq!(ok("{{ modules.datetime.datetime(2023, 3, 4, 0, 0, 0, 1500).isoformat() }}"), "2023-03-04T00:00:00.001500");
        assert_eq!(ok("{{ modules.datetime.date(2023, 3, 4) }} {{ modules.datetime.date(2023, 3, 4).weekday() }}"), "2023-03-04 5");
        let parsed = "{% set d = modules.datetime.datetime.strptime('2023-03-04', '%Y-%m-%d') %}";
        assert_eq!(ok(&format!("{parsed}{{{{ d.strftime('%d/%m/%y %H:%M %f%z') }}}} {{{{ d.year }}}}")), "04/03/23 00:00 000000 2023");
        assert_eq!(ok(&format!("{parsed}{{{{ d.replace(day=1).date() }}}}")), "2023-03-01");
        assert_eq!(ok("{{ modules.datetime.timedelta(days=1, hours=2, seconds=3) }}"), "1 day, 2:00:03");
        assert_eq!(ok("{{ modules.datetime.timedelta(hours=-1) }} {{ modules.datetime.timedelta(hours=-1).days }}"), "-1 day, 23:00:00 -1");
        assert_eq!(ok("{{ modules.datetime.timedelta(weeks=1).total_seconds() }}"), "604800.0");
        let week_before = format!("{parsed}{{{{ modules.datetime.date.fromordinal(d.toordinal() - 7) }}}}");
        assert_eq!(ok(&week_before), "2023-02-25");
        let utc = "modules.datetime.timezone.utc";
        assert_eq!(ok(&format!("{{{{ modules.datetime.datetime.fromtimestamp(1677888000 + 3600, {utc}) }}}}")), "2023-03-04 01:00:00+00:00");
        assert_eq!(ok("{{ modules.datetime.datetime.utcfromtimestamp(modules.datetime.datetime.fromtimestamp(86400).timestamp()) }}"), "1970-01-02 00:00:00");
        assert_eq!(ok(&format!("{parsed}{{{{ d < modules.datetime.datetime(2023, 3, 5) }}}}")), "True");
        assert_eq!(ok("{{ modules.datetime.datetime.now(modules.datetime.timezone.utc).strftime('%z') }}"), "+0000");
        assert_eq!(ok("{{ modules.datetime.date.today().year >= 2024 }}"), "True");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(rendered("{{ modules.datetime.date(2023, 2, 30) }}").is_err_and(|e| e.contains("date(2023, 2, 30): no such day")));
        let parsed = rendered("{{ modules.datetime.datetime.strptime('March', '%Y') }}");
        assert!(parsed.is_err_and(|e| e.contains("strptime(`March`, `%Y`)")));
        assert!(rendered("{{ modules.datetime.timedelta(days=1e12) }}").is_err_and(|e| e.contains("timedelta(): out of range")));
        // Within Python's bound but past what i64 microseconds hold: an error, not a saturated span.
        assert!(rendered("{{ modules.datetime.timedelta(days=200000000) }}").is_err_and(|e| e.contains("timedelta(): out of range")));
        assert!(rendered("{{ modules.datetime.datetime(2023, 1, 1).strftime('%Q') }}").is_err_and(|e| e.contains("is not a format")));
    }
}
