//! Strategies side by side: the same arriving data through the max filter, partitions,
//! microbatch and a full refresh (the truth), with each strategy's drift from the truth per
//! day as a grid: a row per strategy, a cell per day.

use std::collections::BTreeMap;

use leptos::prelude::*;

use super::SessionRef;
use crate::course::compare::Comparison;
use crate::dbt::table_diff::{Row, TableDiff};
use crate::orchestrate::partitions::day_text;
use crate::view::chart::row_date;

const CELL: f64 = 12.0;
const LABEL: f64 = 96.0;

#[component]
pub fn Compare(session: SessionRef) -> impl IntoView {
    let result = RwSignal::new_local(None::<Comparison>);
    let run = move |lesson_story: bool| {
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            if let Ok(comparison) = s.compare(lesson_story).await {
                result.set(Some(comparison));
            }
        });
    };
    view! {
        <h2>"Strategies side by side"</h2>
        <p class="note">
            "The same data, arriving over time, through four versions of daily_metrics, each updated after every "
            "arrival the way it would be in production. Your session's tables are not changed."
        </p>
        <div class="actions">
            <button class="primary" data-testid="compare-lesson-button" on:click=move |_| run(true)>"Compare on the lesson's data"</button>
            <button data-testid="compare-session-button" on:click=move |_| run(false)>"Compare on this session's data"</button>
        </div>
        {move || result.get().map(|c| view! { <ComparisonView comparison=c /> })}
    }
}

#[component]
fn ComparisonView(comparison: Comparison) -> impl IntoView {
    let truth = comparison.truth.clone().unwrap_or_default();
    let days: Vec<String> = truth.rows.values().filter_map(row_day).collect();
    let width = LABEL + CELL * days.len() as f64 + 4.0;
    let height = CELL * comparison.variants.len() as f64 + 18.0;
    let count_column = truth.columns.iter().position(|c| c == "trip_count");
    view! {
        <p class="note" data-testid="compare-arrivals">{format!("Arrivals: {}.", comparison.arrivals.join("; "))}</p>
        {(!comparison.skipped.is_empty()).then(|| view! {
            <p class="warning">{format!("Not replayed: {}.", comparison.skipped.join("; "))}</p>
        })}
        <div class="table-scroll" tabindex="0">
            <table class="data compare-table">
                <thead><tr><th>"strategy"</th><th>"how it is updated"</th><th>"dbt runs"</th><th>"days off the truth"</th></tr></thead>
                <tbody>
                    {comparison.variants.iter().map(|v| {
                        let off = drift_by_day(v.drift.as_ref().map(|d| (d, count_column)));
                        let listed: Vec<String> = off.keys().cloned().collect();
                        view! {
                            <tr data-testid="compare-variant" data-strategy=v.strategy.name() data-drift-days=listed.join(",")>
                                <td><strong>{v.strategy.name()}</strong></td>
                                <td>{v.strategy.describe()}</td>
                                <td>{v.runs.to_string()}</td>
                                <td>{if listed.is_empty() { "none".to_string() } else { format!("{}: {}", listed.len(), listed.join(", ")) }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <h3 class="subhead">"Drift from the truth per day (trip_count difference; any other column off is marked too)"</h3>
        <div class="drift-box" tabindex="0">
            <svg class="drift-grid" width=width height=height viewBox=format!("0 0 {width} {height}") role="img" aria-label="drift per day and strategy">
                {comparison.variants.iter().enumerate().map(|(row, v)| {
                    let off = drift_by_day(v.drift.as_ref().map(|d| (d, count_column)));
                    let y = row as f64 * CELL;
                    let name = v.strategy.name();
                    view! {
                        <text class="tick" x=LABEL - 6.0 y=y + CELL - 2.0 text-anchor="end">{name}</text>
                        {days.iter().enumerate().map(|(col, day)| {
                            let delta = off.get(day).copied();
                            let class = match delta { None => "cell same", Some(0) => "cell off", Some(_) => "cell off count" };
                            let title = match delta {
                                None => format!("{day}: equals the truth"),
                                Some(0) => format!("{day}: trip_count right, other values off"),
                                Some(d) => format!("{day}: trip_count off by {d:+}"),
                            };
                            view! {
                                <rect class=class data-testid="compare-cell" data-strategy=name data-date=day.clone()
                                    data-delta=delta.map(|d| d.to_string()).unwrap_or_default()
                                    x=LABEL + col as f64 * CELL y=y width=CELL - 1.0 height=CELL - 1.0>
                                    <title>{title}</title>
                                </rect>
                            }
                        }).collect_view()}
                    }
                }).collect_view()}
                {days.iter().enumerate().filter(|(_, d)| d.ends_with("-01")).map(|(col, day)| view! {
                    <text class="tick" x=LABEL + col as f64 * CELL y=height - 4.0>{day.clone()}</text>
                }).collect_view()}
            </svg>
        </div>
        <p class="note">"Grey: equals the truth. Amber: some value differs. Red: trip_count differs (hover for by how much)."</p>
    }
}

/// Day → trip_count difference (variant − truth; 0 when only other columns differ), for
/// every day where the variant is off. A day the variant lacks counts its whole truth.
fn drift_by_day(drift: Option<(&TableDiff, Option<usize>)>) -> BTreeMap<String, i64> {
    let Some((drift, count)) = drift else { return BTreeMap::new() };
    let trips = |row: &Row| count.and_then(|c| row.get(c)?.as_i64()).unwrap_or(0);
    let mut out = BTreeMap::new();
    for c in &drift.changed {
        out.extend(row_day(&c.new).map(|d| (d, trips(&c.old) - trips(&c.new))));
    }
    for row in &drift.added {
        out.extend(row_day(row).map(|d| (d, -trips(row))));
    }
    for row in &drift.removed {
        out.extend(row_day(row).map(|d| (d, trips(row))));
    }
    out
}

fn row_day(row: &Row) -> Option<String> {
    row_date(row).map(day_text)
}
