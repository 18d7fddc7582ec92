//! The daily partitions as a calendar, coloured by status. Click selects a day, shift-click or
//! drag extends the selection; "Materialize selected" runs it (one run per partition, or one
//! run over the range), "Full refresh" rebuilds everything.

use chrono::{Datelike, NaiveDate};
use leptos::prelude::*;

use super::SessionRef;
use crate::run::BuildRequest;
use crate::partitions::{day_text, parse_range, range_text};
use crate::protocol::PartitionCell;

#[component]
pub fn Partitions(session: SessionRef) -> impl IntoView {
    let (snapshot, running, progress, view_state) = session.with_value(|s| (s.snapshot, s.running, s.progress, s.view));
    // (anchor, other end) of the selection, kept in the page's view so share links carry it.
    let selection = Signal::derive(move || view_state.with(|v| v.selection.as_deref().and_then(|r| parse_range(r).ok())));
    let select = move |value: Option<(NaiveDate, NaiveDate)>| {
        view_state.update(|v| v.selection = value.map(|(a, b)| range_text(a, b)));
    };
    let dragging = RwSignal::new(false);
    let single_run = RwSignal::new(false);
    let selected = move |day: NaiveDate| selection.get().is_some_and(|(a, b)| day >= a.min(b) && day <= a.max(b));
    let range = move || {
        selection.get().map(|(a, b)| range_text(a.min(b), a.max(b)))
    };
    let materialize = move |_| {
        let Some(range) = range() else { return };
        let s = session.get_value();
        let single = single_run.get_untracked();
        leptos::task::spawn_local(async move {
            let _ = s.materialize(&range, single).await;
        });
    };
    let full_refresh = move |_| {
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let _ = s.build(&BuildRequest { full_refresh: true, ..BuildRequest::default() }).await;
        });
    };
    let cancel = move |_| session.with_value(|s| s.cancel());
    let months = Memo::new(move |_| snapshot.with(|s| by_month(&s.partitions)));
    view! {
        <h2>"Partitions"</h2>
        <p class="hint">"Daily partitions of daily_metrics. Click a day, shift-click or drag for a range."</p>
        {move || snapshot.with(|s| s.unbuilt_months.clone()).first().map(|_| {
            let months = snapshot.with(|s| s.unbuilt_months.join(", "));
            view! {
                <p class="warning" data-testid="unbuilt-warning">
                    {format!("stg_trips does not have {months} yet: its partitions would read no trips. Run a full refresh first (the orchestrator builds stg_trips as its own asset).")}
                </p>
            }
        })}
        <div class="calendar" on:mouseleave=move |_| dragging.set(false) on:mouseup=move |_| dragging.set(false)>
            {move || months.get().into_iter().map(|(title, weeks)| view! {
                <div class="month">
                    <h3>{title}</h3>
                    <div class="weekdays">
                        {["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"].map(|d| view! { <span>{d}</span> })}
                    </div>
                    <div class="days">
                        {weeks.into_iter().map(|cell| match cell {
                            None => view! { <span class="blank"></span> }.into_any(),
                            Some(p) => {
                                let day = p.day;
                                let saved = p.status.clone();
                                let status = Signal::derive(move || if running.with(|r| r.contains(&day)) { "running".to_string() } else { saved.clone() });
                                view! {
                                    <button
                                        class=move || format!("day {}{}", status.get(), if selected(day) { " selected" } else { "" })
                                        data-testid=format!("partition-{}", day_text(day))
                                        data-status=status
                                        title=format!("{}: {}", day_text(day), p.detail)
                                        on:mousedown=move |ev: web_sys::MouseEvent| {
                                            if ev.shift_key() {
                                                select(Some((selection.get_untracked().map_or(day, |(a, _)| a), day)));
                                            } else {
                                                select(Some((day, day)));
                                                dragging.set(true);
                                            }
                                        }
                                        on:mouseenter=move |_| {
                                            if dragging.get_untracked()
                                                && let Some((anchor, _)) = selection.get_untracked()
                                            {
                                                select(Some((anchor, day)));
                                            }
                                        }
                                    >
                                        {day.day().to_string()}
                                    </button>
                                }.into_any()
                            }
                        }).collect_view()}
                    </div>
                </div>
            }).collect_view()}
        </div>
        <div class="legend">
            {["missing", "materialized", "stale", "failed", "running"].map(|s| view! { <span class=format!("key status-{s}")>{s}</span> })}
        </div>
        <div class="actions">
            <span class="selection" data-testid="selection">{move || range().map_or("Nothing selected".to_string(), |r| format!("Selected: {r}"))}</span>
            <label class="check">
                <input type="checkbox" prop:checked=move || single_run.get() on:change=move |ev| single_run.set(event_target_checked(&ev)) />
                "one run for the whole range"
            </label>
            <button data-testid="materialize-button" disabled=move || selection.get().is_none() || progress.get().is_some() on:click=materialize>
                "Materialize selected"
            </button>
            <button data-testid="full-refresh-button" disabled=move || progress.get().is_some() on:click=full_refresh>"Full refresh"</button>
            <Show when=move || progress.with(|p| p.as_ref().is_some_and(|p| p.cancellable))>
                <button class="cancel" on:click=cancel>"Cancel"</button>
            </Show>
        </div>
    }
}

/// Partitions grouped by month, each as calendar cells (Monday first, blanks before day 1).
fn by_month(cells: &[PartitionCell]) -> Vec<(String, Vec<Option<PartitionCell>>)> {
    let mut months: Vec<(String, Vec<Option<PartitionCell>>)> = Vec::new();
    for cell in cells {
        let title = cell.day.format("%B %Y").to_string();
        if months.last().is_none_or(|(t, _)| *t != title) {
            let lead = cell.day.weekday().num_days_from_monday() as usize;
            months.push((title, vec![None; lead]));
        }
        if let Some((_, days)) = months.last_mut() {
            days.push(Some(cell.clone()));
        }
    }
    months
}

