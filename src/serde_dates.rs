//! Dates as text in serialized data (`2023-03-04`, `2023-03-04T05:06:07`), for
//! `#[serde(with = …)]`. chrono's own serde feature would rebuild Arrow and DataFusion with it.

use chrono::{NaiveDate, NaiveDateTime};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

const DAY: &str = "%Y-%m-%d";
const TIME: &str = "%Y-%m-%dT%H:%M:%S%.f";

fn parse_day<E: serde::de::Error>(text: &str) -> Result<NaiveDate, E> {
    NaiveDate::parse_from_str(text, DAY).map_err(|_| E::custom(format!("'{text}' is not a YYYY-MM-DD day")))
}

/// One day.
pub mod day {
    use super::*;

    pub fn serialize<S: Serializer>(day: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&day.format(DAY))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        parse_day(&String::deserialize(deserializer)?)
    }
}

/// A list or set of days.
pub mod days {
    use super::*;

    pub fn serialize<S: Serializer, C>(days: &C, serializer: S) -> Result<S::Ok, S::Error>
    where
        for<'a> &'a C: IntoIterator<Item = &'a NaiveDate>,
    {
        serializer.collect_seq(days.into_iter().map(|day| day.format(DAY).to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, C: FromIterator<NaiveDate>>(deserializer: D) -> Result<C, D::Error> {
        Vec::<String>::deserialize(deserializer)?.iter().map(|text| parse_day(text)).collect()
    }
}

/// An optional date and time.
pub mod optional_time {
    use super::*;

    pub fn serialize<S: Serializer>(time: &Option<NaiveDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.collect_str(&time.format(TIME)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDateTime>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| NaiveDateTime::parse_from_str(&text, TIME).map_err(|_| D::Error::custom(format!("'{text}' is not a date and time"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Dated {
        #[serde(with = "day")]
        day: NaiveDate,
        #[serde(with = "days")]
        days: std::collections::BTreeSet<NaiveDate>,
        #[serde(with = "optional_time")]
        at: Option<NaiveDateTime>,
    }

    #[test]
    fn dates_round_trip_as_text() {
        let day = NaiveDate::from_ymd_opt(2023, 3, 4).unwrap_or_default();
        let at = day.and_hms_milli_opt(5, 6, 7, 250);
        let dated = Dated { day, days: [day, day.succ_opt().unwrap_or(day)].into(), at };
        let json = serde_json::to_string(&dated).unwrap_or_default();
        assert_eq!(json, r#"{"day":"2023-03-04","days":["2023-03-04","2023-03-05"],"at":"2023-03-04T05:06:07.250"}"#);
        assert_eq!(serde_json::from_str::<Dated>(&json).ok(), Some(dated));
        assert!(serde_json::from_str::<Dated>(r#"{"day":"2023-13-01","days":[],"at":null}"#).is_err());
    }
}
