//! `daily_metrics` as a time series: trip_count bars, the three averages as lines (each on its
//! own scale), the days the shown run rewrote highlighted, exact values on hover, and the
//! partition statuses as a strip along the x axis. A slider travels back through the runs:
//! the chart then shows the table as it was right after the chosen run.

use chrono::NaiveDate;
use leptos::prelude::*;

use super::SessionRef;
use super::lesson::show;
use crate::orchestrate::partitions::day_text;
use crate::view::chart::{self, DailyPoint};
use crate::view::travel::Travel;

/// The chart's size in its own units: on a phone, a narrower box keeps its labels readable
/// once it is scaled to the screen.
const WIDE: (f64, f64) = (900.0, 300.0);
const NARROW: (f64, f64) = (420.0, 260.0);
const NARROW_BELOW_PX: f64 = 600.0;
const STRIP: f64 = 8.0;

#[component]
pub fn DailyChart(session: SessionRef) -> impl IntoView {
    let (published, view_state) = session.with_value(|s| (s.published, s.view));
    let (daily, runs, partitions) = (published.daily, published.runs, published.partitions);
    let hovered = RwSignal::new(None::<NaiveDate>);
    let travel = Memo::new(move |_| daily.with(|d| runs.with(|r| view_state.with(|v| Travel::of(d, r, v.run)))));
    let travelling = Memo::new(move |_| travel.with(Travel::travelling));
    let narrow = RwSignal::new(is_narrow());
    let resized = window_event_listener(leptos::ev::resize, move |_| narrow.set(is_narrow()));
    on_cleanup(move || resized.remove());
    let geometry = Memo::new(move |_| {
        let (width, height) = if narrow.get() { NARROW } else { WIDE };
        daily.with(|d| travel.with(|t| chart::daily(&d.days, &t.points, width, height)))
    });
    let line_class = |name: &str| format!("line {}", name.replace('_', "-"));
    view! {
        <h2>"daily_metrics"</h2>
        <div class="legend">
            <span class="key bars">"trip_count"</span>
            {move || geometry.with(|g| g.lines.iter().map(|l| {
                let label = format!("{} (max {})", l.name, format_value(l.max));
                view! { <span class=format!("key {}", line_class(l.name))>{label}</span> }
            }).collect_view())}
            <span class="key touched">{move || if travelling.get() { "rewritten by the run shown" } else { "rewritten by the last run" }}</span>
        </div>
        {move || {
            let count = travel.with(|t| t.stops.len());
            (count > 1).then(|| {
                let on_input = move |ev: leptos::ev::Event| {
                    let Ok(i) = event_target_value(&ev).parse::<usize>() else { return };
                    let run = travel.with(|t| t.choice(i));
                    view_state.update(|v| v.run = run);
                };
                view! {
                    <div class="time-travel">
                        <label>
                            "Time travel "
                            <input type="range" data-testid="time-travel" min="0" max=(count - 1).to_string()
                                prop:value=move || travel.with(|t| t.index.to_string()) on:input=on_input />
                        </label>
                        <span data-testid="time-travel-label" class=move || if travelling.get() { "travelling" } else { "" }>
                            {move || travel.with(Travel::label)}
                        </span>
                        {move || travelling.get().then(|| view! {
                            <button data-testid="time-travel-now" on:click=move |_| view_state.update(|v| v.run = None)>"Back to now"</button>
                        })}
                    </div>
                    {move || travel.with(|t| t.rows.clone()).map(|rows| view! {
                        <details class="travel-table">
                            <summary>{format!("daily_metrics as it was: {} rows", rows.rows.len())}</summary>
                            <div class="table-scroll" tabindex="0">
                                <table class="data" data-testid="time-travel-table">
                                    <thead><tr>{rows.columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                                    <tbody>
                                        {rows.rows.values().map(|row| view! {
                                            <tr>{row.iter().map(|v| view! { <td>{show(Some(v))}</td> }).collect_view()}</tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        </details>
                    })}
                }
            })
        }}
        <div class="chart-box">
            <svg class="chart" viewBox=move || geometry.with(|g| format!("0 0 {} {}", g.width, g.height + STRIP + 4.0)) role="img" aria-label="daily_metrics chart">
                {move || geometry.with(|g| g.y_ticks.iter().map(|(y, label)| view! {
                    <line class="grid" x1=g.left x2=g.width - 12.0 y1=*y y2=*y />
                    <text class="tick" x=g.left - 6.0 y=*y + 4.0 text-anchor="end">{label.clone()}</text>
                }).collect_view())}
                {move || {
                    let touched = travel.with(|t| t.touched.clone());
                    geometry.with(|g| g.bars.iter().map(|b| {
                        let date = b.date;
                        let class = if touched.contains(&date) { "bar touched" } else { "bar" };
                        view! {
                            <rect
                                class=class
                                data-testid="trip-count-bar"
                                data-date=day_text(date)
                                data-value=b.value.to_string()
                                x=b.x y=b.y width=b.width height=b.height
                                on:mouseenter=move |_| hovered.set(Some(date))
                                on:mouseleave=move |_| hovered.set(None)
                            />
                        }
                    }).collect_view())
                }}
                {move || geometry.with(|g| g.lines.iter().map(|l| view! {
                    <path class=line_class(l.name) d=l.path.clone() />
                }).collect_view())}
                {move || geometry.with(|g| g.x_ticks.iter().map(|(x, label)| view! {
                    <text class="tick" x=*x y=g.bottom + 16.0 text-anchor="middle">{label.clone()}</text>
                }).collect_view())}
                {move || {
                    let g = geometry.get();
                    let days = daily.with(|d| d.days.len());
                    partitions.with(|partitions| {
                        let slot = (g.width - g.left - 12.0) / days.max(1) as f64;
                        partitions.iter().enumerate().map(|(i, p)| view! {
                            <rect class=format!("strip {}", p.status) x=g.left + slot * i as f64 y=g.height + 2.0
                                width=slot.max(1.0) - 1.0 height=STRIP>
                                <title>{format!("{}: {}", day_text(p.day), p.status)}</title>
                            </rect>
                        }).collect_view()
                    })
                }}
            </svg>
            {move || hovered.get().and_then(|date| {
                travel.with(|t| t.points.iter().find(|p| p.date == date).cloned())
            }).map(|p| view! { <Tooltip point=p /> })}
        </div>
        {move || daily.with(|d| {
            if d.points.is_empty() {
                Some("No daily_metrics rows yet: build the project or materialize a partition.".to_string())
            } else if d.outside > 0 {
                Some(format!("{} day(s) of daily_metrics fall outside the loaded months (pickups with wrong clocks) and are not charted.", d.outside))
            } else {
                None
            }
        }).map(|note| view! { <p class="note">{note}</p> })}
    }
}

#[component]
fn Tooltip(point: DailyPoint) -> impl IntoView {
    view! {
        <div class="tooltip" data-testid="chart-tooltip">
            <strong>{day_text(point.date)}</strong>
            <dl>
                <dt>"trip_count"</dt><dd>{point.trip_count.to_string()}</dd>
                <dt>"average_duration"</dt><dd>{format_value(point.average_duration)}</dd>
                <dt>"average_amount"</dt><dd>{format_value(point.average_amount)}</dd>
                <dt>"pct_over_30_min"</dt><dd>{format_value(point.pct_over_30_min)}</dd>
            </dl>
        </div>
    }
}

fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 { format!("{value:.1}") } else { format!("{value:.4}") }
}


fn is_narrow() -> bool {
    web_sys::window().and_then(|w| w.inner_width().ok()).and_then(|w| w.as_f64()).is_some_and(|w| w < NARROW_BELOW_PX)
}
