//! Dagster's backfill dialog: which partitions (typed, or picked by status), how they run (one
//! run per partition, or one per range of days), a preview of the runs and their dbt commands,
//! then launch. A failed run does not stop the others; the calendar offers to re-run it.

use chrono::NaiveDate;
use leptos::prelude::*;

use super::SessionRef;
use super::partitions::{days_with, definition_of};
use crate::dbt::history::dbt_command;
use crate::orchestrate::partitions::{run_request, runs_of, selection_text};

/// Commands listed in the preview; the rest are counted.
const PREVIEW_COMMANDS: usize = 8;

#[component]
pub fn BackfillDialog(
    session: SessionRef,
    open: RwSignal<bool>,
    /// The calendar's selection, which the dialog starts from.
    selection: Signal<Option<String>>,
    launch: impl Fn(String) + Copy + 'static,
) -> impl IntoView {
    let (published, view_state) = session.with_value(|s| (s.published, s.view));
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    let target = RwSignal::new(String::new());
    let cells = move || published.partitions.get();
    // Opening starts from the calendar's selection, or every missing day without one.
    Effect::new(move |_| {
        let Some(dialog) = dialog.get() else { return };
        if open.get() {
            let start = selection.get_untracked().unwrap_or_else(|| selection_text(&days_with(&cells(), "missing")));
            target.set(start);
            if !dialog.open() {
                let _ = dialog.show_modal();
            }
        } else if dialog.open() {
            dialog.close();
        }
    });
    let single_run = Signal::derive(move || view_state.with(|v| v.single_run));
    let days = Memo::new(move |_| {
        let text = target.get();
        match published.partitions.with(|p| definition_of(p)) {
            None => Err("there are no partitions yet: load a trip file first".to_string()),
            Some(_) if text.trim().is_empty() => Err("no partitions selected".to_string()),
            Some(definition) => definition.select(&text).map_err(|e| e.to_string()),
        }
    });
    let runs = Memo::new(move |_| runs_of(&days.get().unwrap_or_default(), single_run.get()));
    let helper = move |label: &'static str, testid: &'static str, pick: fn(&[crate::view::protocol::PartitionCell], &[NaiveDate]) -> Vec<NaiveDate>| {
        let picked = Memo::new(move |_| pick(&cells(), &days.get().unwrap_or_default()));
        view! {
            <button type="button" data-testid=testid disabled=move || picked.with(Vec::is_empty)
                on:click=move |_| target.set(selection_text(&picked.get()))>
                {move || format!("{label} ({})", picked.with(Vec::len))}
            </button>
        }
    };
    let launch_now = move |_| {
        if days.with(Result::is_ok) {
            open.set(false);
            launch(target.get_untracked());
        }
    };
    view! {
        <dialog node_ref=dialog class="backfill-dialog" data-testid="backfill-dialog" aria-labelledby="backfill-title"
            on:close=move |_| open.set(false)>
            <h2 id="backfill-title">"Backfill daily partitions"</h2>
            <label class="field">
                "Partitions "
                <input type="text" data-testid="backfill-partitions" size="40" placeholder="2023-03-04...2023-03-10, 2023-03-15"
                    prop:value=move || target.get()
                    aria-invalid=move || days.with(Result::is_err).to_string()
                    aria-describedby="backfill-preview"
                    on:input=move |ev| target.set(event_target_value(&ev)) />
            </label>
            <div class="helpers" role="group" aria-label="Select partitions by status">
                {helper("All missing", "backfill-all-missing", |cells, _| days_with(cells, "missing"))}
                {helper("All stale", "backfill-all-stale", |cells, _| days_with(cells, "stale"))}
                {helper("All failed", "backfill-all-failed", |cells, _| days_with(cells, "failed"))}
                {helper("Only missing and failed in this selection", "backfill-missing-failed", |cells, selected| {
                    cells.iter().filter(|c| (c.status == "missing" || c.status == "failed") && selected.contains(&c.day)).map(|c| c.day).collect()
                })}
            </div>
            <fieldset class="policy">
                <legend>"Runs"</legend>
                <label>
                    <input type="radio" name="backfill-policy" data-testid="policy-per-partition" prop:checked=move || !single_run.get()
                        on:change=move |_| view_state.update(|v| v.single_run = false) />
                    "One run per partition (BackfillPolicy.multi_run(1))"
                </label>
                <label>
                    <input type="radio" name="backfill-policy" data-testid="policy-single-run" prop:checked=move || single_run.get()
                        on:change=move |_| view_state.update(|v| v.single_run = true) />
                    "One run per range of days (BackfillPolicy.single_run())"
                </label>
                <p class="hint">
                    "dagster-dbt backfills time-window partitions as a single run by default: one dbt build with min_date = the first day and max_date = the day after the last. "
                    "The lesson's between includes max_date, so every run also rewrites the day after its last: one run per partition writes most days twice, a single run once. "
                    "Export writes the choice here into the Dagster code."
                </p>
            </fieldset>
            <div class="preview" id="backfill-preview" data-testid="backfill-preview" aria-live="polite">
                {move || match days.get() {
                    Err(problem) => view! { <p class="range-problem">{problem}</p> }.into_any(),
                    Ok(days) => {
                        let runs = runs.get();
                        let models = published.lineage.with(|l| l.incremental_models());
                        let more = runs.len().saturating_sub(PREVIEW_COMMANDS);
                        view! {
                            <p class="summary" data-testid="backfill-summary">{format!("{} → {}", plural(days.len(), "partition"), plural(runs.len(), "run"))}</p>
                            <ol class="commands">
                                {runs.iter().take(PREVIEW_COMMANDS).map(|(first, last)| view! {
                                    <li><code>{dbt_command(&run_request(&models, *first, *last))}</code></li>
                                }).collect_view()}
                            </ol>
                            {(more > 0).then(|| view! { <p class="hint">{format!("… and {}", plural(more, "more run"))}</p> })}
                        }.into_any()
                    }
                }}
            </div>
            <div class="actions">
                <button type="button" class="primary" data-testid="backfill-launch" disabled=move || days.with(Result::is_err) on:click=launch_now>
                    "Launch backfill"
                </button>
                <button type="button" data-testid="backfill-close" on:click=move |_| open.set(false)>"Close"</button>
            </div>
        </dialog>
    }
}

fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}
