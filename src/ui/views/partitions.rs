//! The daily partitions as a calendar, status shown by colour and a glyph. A mouse clicks a
//! day, shift-clicks or drags for a range; a touch taps the first day, then the last; the
//! keyboard moves with the arrows, Home/End (week), PageUp/PageDown (month), extends with Shift
//! and selects with Enter or Space; the range can also be typed. "Materialize selected" runs
//! the selection, "Backfill…" opens Dagster's dialog, "Full refresh" rebuilds everything.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::SessionRef;
use super::backfill::BackfillDialog;
use crate::dbt::request::BuildRequest;
use crate::orchestrate::partitions::{DailyPartitions, day_text, parse_range, range_text, selection_text};
use crate::view::protocol::PartitionCell;

/// Statuses in the legend's order, with the glyph that shows each beside its colour.
const STATUSES: [(&str, &str); 5] = [("missing", ""), ("materialized", "✓"), ("stale", "!"), ("failed", "✕"), ("running", "…")];

#[component]
pub fn Partitions(session: SessionRef) -> impl IntoView {
    let (published, running, progress, view_state) = session.with_value(|s| (s.published, s.running, s.progress, s.view));
    // (anchor, other end) of the selection, kept in the page's view so share links carry it.
    let selection = Signal::derive(move || view_state.with(|v| v.selection.as_deref().and_then(|r| parse_range(r).ok())));
    let select = move |value: Option<(NaiveDate, NaiveDate)>| {
        view_state.update(|v| v.selection = value.map(|(a, b)| range_text(a, b)));
    };
    // Shift's extension: from the selection's anchor (`from` without a selection) to `to`.
    let extend = move |from: NaiveDate, to: NaiveDate| select(Some((selection.get_untracked().map_or(from, |(a, _)| a), to)));
    let definition = Memo::new(move |_| published.partitions.with(|p| definition_of(p)));
    let dragging = RwSignal::new(false);
    // A touch range: the first tap's day, until the second tap.
    let tap_anchor = RwSignal::new(None::<NaiveDate>);
    // The one day reachable by Tab (a roving tabindex): where the keyboard last was, else the
    // selection's end, else the first day.
    let keyboard_day = RwSignal::new(None::<NaiveDate>);
    let tab_day = move || {
        keyboard_day.get().or_else(|| selection.get().map(|(_, end)| end)).or_else(|| definition.get().map(|d| d.start))
    };
    let single_run = Signal::derive(move || view_state.with(|v| v.single_run));
    let dialog_open = RwSignal::new(false);
    let selected = move |day: NaiveDate| selection.get().is_some_and(|(a, b)| day >= a.min(b) && day <= a.max(b));
    let range = move || selection.get().map(|(a, b)| range_text(a.min(b), a.max(b)));
    let materialize_days = move |days: String| {
        let s = session.get_value();
        let single = single_run.get_untracked();
        super::start(async move { s.materialize(&days, single).await });
    };
    let failed_days = Memo::new(move |_| published.partitions.with(|p| days_with(p, "failed")));
    let full_refresh = move |_| {
        let s = session.get_value();
        super::start(async move { s.build(&BuildRequest { full_refresh: true, ..BuildRequest::default() }).await });
    };
    let cancel = move |_| session.with_value(|s| s.cancel());
    let on_key = move |ev: web_sys::KeyboardEvent, day: NaiveDate| {
        let key = ev.key();
        if key == "Enter" || key == " " {
            ev.prevent_default();
            if ev.shift_key() { extend(day, day) } else { select(Some((day, day))) }
            return;
        }
        let (Some(target), Some(definition)) = (key_target(day, &key), definition.get_untracked()) else { return };
        ev.prevent_default();
        let target = target.clamp(definition.start, definition.end.pred_opt().unwrap_or(definition.start));
        if ev.shift_key() {
            extend(day, target);
        }
        keyboard_day.set(Some(target));
        focus_day(target);
    };
    // The grid changes only with the days; a run changes the statuses its cells read.
    let months = Memo::new(move |_| published.partitions.with(|p| by_month(p)));
    let cells = Memo::new(move |_| {
        published.partitions.with(|p| p.iter().map(|c| (c.day, (c.status.clone(), c.detail.clone()))).collect::<BTreeMap<_, _>>())
    });
    view! {
        <h2>"Partitions"</h2>
        <p class="hint" id="calendar-hint">
            "Daily partitions of daily_metrics. Click a day, shift-click or drag for a range; on a touch screen tap the first day, then the last. Keyboard: arrows move, Shift extends, Enter selects."
        </p>
        {move || published.unbuilt_months.with(|months| (!months.is_empty()).then(|| months.join(", "))).map(|months| {
            view! {
                <p class="warning" data-testid="unbuilt-warning">
                    {format!("stg_trips does not have {months} yet: its partitions would read no trips. Run a full refresh first (the orchestrator builds stg_trips as its own asset).")}
                </p>
            }
        })}
        <div class="calendar" on:mouseleave=move |_| dragging.set(false) on:mouseup=move |_| dragging.set(false)>
            {move || months.get().into_iter().map(|(title, weeks)| { let label = title.clone(); view! {
                <div class="month" role="group" aria-label=label>
                    <h3 aria-hidden="true">{title}</h3>
                    <div class="weekdays" aria-hidden="true">
                        {["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"].map(|d| view! { <span>{d}</span> })}
                    </div>
                    <div class="days">
                        {weeks.into_iter().map(|cell| match cell {
                            None => view! { <span class="blank"></span> }.into_any(),
                            Some(day) => {
                                // Memos: a run updates only the cells whose status it changed.
                                let saved = move || cells.with(|c| c.get(&day).map(|(status, _)| status.clone()).unwrap_or_default());
                                let status = Memo::new(move |_| if running.with(|r| r.contains(&day)) { "running".to_string() } else { saved() });
                                let detail = Memo::new(move |_| cells.with(|c| c.get(&day).map(|(_, detail)| detail.clone()).unwrap_or_default()));
                                view! {
                                    <button
                                        class=move || format!("day {}{}", status.get(), if selected(day) { " selected" } else { "" })
                                        data-testid=format!("partition-{}", day_text(day))
                                        data-status=status
                                        title=move || format!("{}: {}", day_text(day), detail.get())
                                        aria-label=move || format!("{}, {}", day.format("%-d %B %Y"), status.get())
                                        aria-pressed=move || selected(day).to_string()
                                        aria-describedby="calendar-hint"
                                        tabindex=move || if tab_day() == Some(day) { "0" } else { "-1" }
                                        on:pointerdown=move |ev: web_sys::PointerEvent| {
                                            keyboard_day.set(Some(day));
                                            if ev.pointer_type() != "mouse" {
                                                let anchor = tap_anchor.get_untracked();
                                                tap_anchor.set(if anchor.is_some() { None } else { Some(day) });
                                                select(Some((anchor.unwrap_or(day), day)));
                                            } else if ev.shift_key() {
                                                extend(day, day);
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
                                        on:keydown=move |ev| on_key(ev, day)
                                    >
                                        {day.day().to_string()}
                                        <span class="glyph" aria-hidden="true">{move || glyph(&status.get())}</span>
                                    </button>
                                }.into_any()
                            }
                        }).collect_view()}
                    </div>
                </div>
            }}).collect_view()}
        </div>
        <div class="legend">
            {STATUSES.map(|(s, g)| view! { <span class=format!("key status-{s}") data-glyph=g>{s}</span> })}
        </div>
        <div class="actions">
            <RangeField selection=range definition select />
            <label class="check">
                <input type="checkbox" prop:checked=move || single_run.get()
                    on:change=move |ev| view_state.update(|v| v.single_run = event_target_checked(&ev)) />
                "one run for the whole range"
            </label>
            <button data-testid="materialize-button" disabled=move || selection.get().is_none() || progress.get().is_some()
                on:click=move |_| if let Some(range) = range() { materialize_days(range) }>
                "Materialize selected"
            </button>
            <button data-testid="backfill-button" disabled=move || progress.get().is_some() on:click=move |_| dialog_open.set(true)>
                "Backfill…"
            </button>
            {move || (!failed_days.get().is_empty()).then(|| {
                let failed = failed_days.get();
                let label = format!("Re-run failed ({})", failed.len());
                view! {
                    <button data-testid="rerun-failed" disabled=move || progress.get().is_some()
                        on:click=move |_| materialize_days(selection_text(&failed))>
                        {label}
                    </button>
                }
            })}
            <button data-testid="full-refresh-button" disabled=move || progress.get().is_some() on:click=full_refresh>"Full refresh"</button>
            <Show when=move || progress.with(|p| p.as_ref().is_some_and(|p| p.cancellable))>
                <button class="cancel" on:click=cancel>"Cancel"</button>
            </Show>
        </div>
        <BackfillDialog session open=dialog_open selection=Signal::derive(range) launch=materialize_days />
    }
}

/// The selection as text to read and type (`2023-03-04...2023-03-10`, Dagster's spelling, or
/// `..`); a typed range is selected when it is a range of these partitions.
#[component]
fn RangeField(
    selection: impl Fn() -> Option<String> + Copy + Send + Sync + 'static,
    definition: Memo<Option<DailyPartitions>>,
    select: impl Fn(Option<(NaiveDate, NaiveDate)>) + Copy + 'static,
) -> impl IntoView {
    let problem = RwSignal::new(None::<String>);
    // A problem is about the text typed; a selection made any other way replaces both.
    Effect::new(move |_| {
        selection();
        problem.set(None);
    });
    let apply = move |text: String| {
        let picked = definition.get_untracked().map(|d| d.select(&text).map(|days| (days.first().copied(), days.last().copied(), days.len())));
        match picked {
            Some(Ok((Some(first), Some(last), count))) if (last - first).num_days() + 1 == count as i64 => {
                problem.set(None);
                select(Some((first, last)));
            }
            Some(Ok(_)) => problem.set(Some("one range, START...END: for several, use Backfill…".into())),
            Some(Err(e)) => problem.set(Some(e.to_string())),
            None => problem.set(Some("there are no partitions yet".into())),
        }
    };
    view! {
        <label class="range-field">
            <span class="visually-hidden">"Partition range"</span>
            <input type="text" data-testid="partition-range-field" placeholder="2023-03-04...2023-03-10" size="23"
                prop:value=move || selection().unwrap_or_default()
                aria-invalid=move || problem.get().is_some().to_string()
                aria-describedby="range-problem"
                on:change=move |ev| apply(event_target_value(&ev)) />
        </label>
        <span class="range-problem" id="range-problem" data-testid="selection" role="status">
            {move || problem.get().unwrap_or_else(|| selection().map_or("Nothing selected".into(), |r| format!("Selected: {r}")))}
        </span>
    }
}

/// Where a key moves the keyboard's day: a day, a week, to the week's ends, or a month.
fn key_target(day: NaiveDate, key: &str) -> Option<NaiveDate> {
    let weekday = u64::from(day.weekday().num_days_from_monday());
    match key {
        "ArrowLeft" => day.checked_sub_days(Days::new(1)),
        "ArrowRight" => day.checked_add_days(Days::new(1)),
        "ArrowUp" => day.checked_sub_days(Days::new(7)),
        "ArrowDown" => day.checked_add_days(Days::new(7)),
        "Home" => day.checked_sub_days(Days::new(weekday)),
        "End" => day.checked_add_days(Days::new(6 - weekday)),
        "PageUp" => day.checked_sub_months(Months::new(1)),
        "PageDown" => day.checked_add_months(Months::new(1)),
        _ => None,
    }
}

fn focus_day(day: NaiveDate) {
    let button = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(&format!("[data-testid=\"partition-{}\"]", day_text(day))).ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(button) = button {
        let _ = button.focus();
    }
}

fn glyph(status: &str) -> &'static str {
    STATUSES.iter().find(|(s, _)| *s == status).map_or("", |(_, g)| g)
}

/// The partitions the cells are (they are every day of the definition, in order).
pub fn definition_of(cells: &[PartitionCell]) -> Option<DailyPartitions> {
    let (first, last) = (cells.first()?.day, cells.last()?.day);
    Some(DailyPartitions { start: first, end: last.succ_opt()? })
}

/// The days whose status is `status`, in order.
pub fn days_with(cells: &[PartitionCell], status: &str) -> Vec<NaiveDate> {
    cells.iter().filter(|c| c.status == status).map(|c| c.day).collect()
}

/// Partitions' days grouped by month, as calendar cells (Monday first, blanks before day 1).
fn by_month(cells: &[PartitionCell]) -> Vec<(String, Vec<Option<NaiveDate>>)> {
    let mut months: Vec<(String, Vec<Option<NaiveDate>>)> = Vec::new();
    for cell in cells {
        let title = cell.day.format("%B %Y").to_string();
        if months.last().is_none_or(|(t, _)| *t != title) {
            let lead = cell.day.weekday().num_days_from_monday() as usize;
            months.push((title, vec![None; lead]));
        }
        if let Some((_, days)) = months.last_mut() {
            days.push(Some(cell.day));
        }
    }
    months
}
