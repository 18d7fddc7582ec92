//! Chart geometry for the daily metrics: scales, bars, line paths and ticks as plain numbers,
//! so the page only draws them as SVG and the arithmetic is tested natively.

use chrono::NaiveDate;

use crate::dbt::table_diff::{KeyedRows, Row};

/// One day of `daily_metrics`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DailyPoint {
    #[serde(with = "crate::serde_dates::day")]
    pub date: NaiveDate,
    pub trip_count: i64,
    #[serde(with = "nan_as_null")]
    pub average_duration: f64,
    #[serde(with = "nan_as_null")]
    pub average_amount: f64,
    #[serde(with = "nan_as_null")]
    pub pct_over_30_min: f64,
}

/// A missing average is NaN, which JSON cannot hold: it travels as null.
mod nan_as_null {
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() { serializer.serialize_f64(*value) } else { serializer.serialize_none() }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
    }
}

/// The chartable days of `daily_metrics` rows (a row without a readable date or count is
/// skipped; a missing average is NaN, drawn as a gap).
pub fn daily_points(rows: &KeyedRows) -> Vec<DailyPoint> {
    let column = |name: &str| rows.columns.iter().position(|c| c == name);
    let (Some(date), Some(count)) = (column("date_of_business"), column("trip_count")) else { return Vec::new() };
    let number = |row: &Row, name: &str| column(name).and_then(|c| row.get(c)?.as_f64()).unwrap_or(f64::NAN);
    rows.rows
        .values()
        .filter_map(|row| {
            let day = row.get(date)?.as_str()?.get(..10)?;
            Some(DailyPoint {
                date: NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?,
                trip_count: row.get(count)?.as_i64()?,
                average_duration: number(row, "average_duration"),
                average_amount: number(row, "average_amount"),
                pct_over_30_min: number(row, "pct_over_30_min"),
            })
        })
        .collect()
}

/// The day of a `daily_metrics` row: its first value, `date_of_business`.
pub fn row_date(row: &Row) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(row.first()?.as_str()?.get(..10)?, "%Y-%m-%d").ok()
}

/// A line series: its name, its own maximum (each line has its own scale) and SVG path.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: &'static str,
    pub max: f64,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub date: NaiveDate,
    pub value: i64,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub width: f64,
    pub height: f64,
    /// Where the plot area starts and ends (for axes).
    pub left: f64,
    pub bottom: f64,
    pub bars: Vec<Bar>,
    pub lines: Vec<Line>,
    /// (y, label) for the trip-count axis.
    pub y_ticks: Vec<(f64, String)>,
    /// (x, label) for some days.
    pub x_ticks: Vec<(f64, String)>,
}

const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Lays out one bar per day of `days` (a continuous range; days without a row get no bar)
/// and the three average lines over the same x positions.
pub fn daily(days: &[NaiveDate], points: &[DailyPoint], width: f64, height: f64) -> Geometry {
    let plot_width = (width - LEFT - RIGHT).max(1.0);
    let plot_height = (height - TOP - BOTTOM).max(1.0);
    let bottom = TOP + plot_height;
    let slot = plot_width / days.len().max(1) as f64;
    let x_of = |date: NaiveDate| days.iter().position(|d| *d == date).map(|i| LEFT + slot * i as f64);
    let axis = count_axis(points.iter().map(|p| p.trip_count).max().unwrap_or(0));
    let count_max = axis.top() as f64;
    let bars = points
        .iter()
        .filter_map(|p| {
            let x = x_of(p.date)?;
            let h = if count_max > 0.0 { plot_height * p.trip_count as f64 / count_max } else { 0.0 };
            Some(Bar { date: p.date, value: p.trip_count, x: x + slot * 0.1, y: bottom - h, width: slot * 0.8, height: h })
        })
        .collect();
    let line = |name: &'static str, value: fn(&DailyPoint) -> f64| {
        let max = points.iter().map(value).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let mut path = String::new();
        for p in points {
            let (Some(x), v) = (x_of(p.date), value(p)) else { continue };
            if !v.is_finite() {
                continue;
            }
            let y = if max > 0.0 { bottom - plot_height * (v.max(0.0) / max) } else { bottom };
            let command = if path.is_empty() { 'M' } else { 'L' };
            path.push_str(&format!("{command}{:.1},{:.1} ", x + slot / 2.0, y));
        }
        Line { name, max, path: path.trim_end().to_string() }
    };
    let lines = vec![
        line("average_duration", |p| p.average_duration),
        line("average_amount", |p| p.average_amount),
        line("pct_over_30_min", |p| p.pct_over_30_min),
    ];
    let y_ticks = (0..=axis.steps)
        .map(|i| {
            let y = if axis.steps > 0 { bottom - plot_height * i as f64 / axis.steps as f64 } else { bottom };
            (y, (i * axis.step).to_string())
        })
        .collect();
    let step = (days.len() / 6).max(1);
    let x_ticks = days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0)
        .map(|(i, d)| (LEFT + slot * (i as f64 + 0.5), d.format("%b %-d").to_string()))
        .collect();
    Geometry { width, height, left: LEFT, bottom, bars, lines, y_ticks, x_ticks }
}

/// The trip-count axis: `steps` ticks above zero, `step` trips apart.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CountAxis {
    step: i64,
    steps: i64,
}

impl CountAxis {
    fn top(self) -> i64 {
        self.step * self.steps
    }
}

/// The axis for counts up to `max`: the smallest whole 1, 2 or 5 × 10ⁿ step that reaches `max`
/// in at most four steps, so every tick is a round count (no "2.5 trips"); no trips, one tick.
fn count_axis(max: i64) -> CountAxis {
    if max <= 0 {
        return CountAxis { step: 1, steps: 0 };
    }
    let mut magnitude = 1i64;
    loop {
        for multiple in [1, 2, 5] {
            let step = multiple * magnitude;
            let steps = (max - 1) / step + 1;
            if steps <= 4 {
                return CountAxis { step, steps };
            }
        }
        // 5 × 10¹⁸ reaches i64::MAX in two steps: the loop ends before this overflows.
        magnitude *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2023, 3, d).unwrap_or_default()
    }

    fn point(d: u32, trips: i64) -> DailyPoint {
        DailyPoint { date: day(d), trip_count: trips, average_duration: 10.0 + d as f64, average_amount: 20.0, pct_over_30_min: 0.1 }
    }

    #[test]
    fn bars_scale_to_a_round_maximum() {
        let days: Vec<NaiveDate> = (1..=4).map(day).collect();
        let g = daily(&days, &[point(1, 4000), point(2, 8000), point(4, 1000)], 460.0, 240.0);
        assert_eq!(g.bars.len(), 3, "a day without a row has no bar");
        // Plot height 200 px; the axis tops out at 8000 in steps of 2000.
        let labels: Vec<&str> = g.y_ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "2000", "4000", "6000", "8000"]);
        assert!((g.bars[1].height - 200.0).abs() < 1e-9);
        assert!((g.bars[0].height - 100.0).abs() < 1e-9);
        assert!((g.bars[0].y + g.bars[0].height - g.bottom).abs() < 1e-9);
        // Slot width is 400 / 4 = 100; day 4 sits in the last slot.
        assert!((g.bars[2].x - (LEFT + 300.0 + 10.0)).abs() < 1e-9);
        assert_eq!(g.lines[0].path.matches('L').count(), 2);
        assert!(g.lines[0].path.starts_with('M'));
    }

    #[test]
    fn count_axes_step_in_whole_round_numbers() {
        let axis = |max| {
            let a = count_axis(max);
            (a.step, a.top())
        };
        assert_eq!(axis(7300), (2000, 8000));
        assert_eq!(axis(1500), (500, 1500));
        assert_eq!(axis(10), (5, 10), "not 2.5 trips a tick");
        assert_eq!(axis(50), (20, 60), "not 12.5");
        assert_eq!(axis(3), (1, 3));
        assert_eq!(count_axis(i64::MAX), CountAxis { step: 5_000_000_000_000_000_000, steps: 2 });
    }

    #[test]
    fn an_empty_month_has_one_tick_at_zero_and_flat_bars() {
        let days: Vec<NaiveDate> = (1..=3).map(day).collect();
        let g = daily(&days, &[point(1, 0), point(2, 0)], 460.0, 240.0);
        assert_eq!(g.y_ticks, vec![(g.bottom, "0".to_string())]);
        assert!(g.bars.iter().all(|b| b.height == 0.0));
    }
}
