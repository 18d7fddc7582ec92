//! Run history, newest first: each run's dbt-equivalent command, status, duration, and per
//! model the compiled SQL and the rows it inserted, updated and deleted.

use leptos::prelude::*;

use super::SessionRef;
use crate::dbt::history::{ModelRun, RunRecord, RunStatus};

#[component]
pub fn Runs(session: SessionRef) -> impl IntoView {
    let runs = session.with_value(|s| s.published.runs);
    view! {
        <h2>"Runs"</h2>
        <ol class="runs">
            // Keyed: a new run adds its entry, the others stay as they are.
            <For each=move || runs.get().into_iter().rev() key=run_key let:run>
                <RunEntry run />
            </For>
        </ol>
    }
}

/// A run is never changed once recorded. Ids start again with a new session, so a run also
/// differs from an earlier session's of the same id by when it started, its command and its
/// length.
fn run_key(run: &RunRecord) -> (u64, String, String, u64) {
    (run.id, run.started_at.clone(), run.command.clone(), run.duration_ms)
}

#[component]
fn RunEntry(run: RunRecord) -> impl IntoView {
    let status = if run.status == RunStatus::Success { "ok" } else { "failed" };
    let summary = format!("#{} {} · {} ms · {}", run.id, status, run.duration_ms, run.started_at);
    view! {
        <li class=format!("run {status}") data-testid="run-entry" data-run-id=run.id.to_string()>
            <details>
                <summary>
                    <span class="run-meta">{summary}</span>
                    <code class="command" data-testid="run-command">{run.command.clone()}</code>
                </summary>
                {run.error.clone().map(|e| view! { <p class="run-error">{e}</p> })}
                {(!run.partitions.is_empty()).then(|| view! {
                    <p class="run-partitions">{format!("Partitions: {}", run.partitions.join(", "))}</p>
                })}
                {run.models.into_iter().map(|m| view! { <ModelEntry model=m /> }).collect_view()}
                {(!run.tests.is_empty()).then(|| view! {
                    <ul class="run-tests" data-testid="run-tests" aria-label="data tests">
                        {run.tests.iter().map(|t| view! { <li>{format!("{} {}", t.name, t.outcome())}</li> }).collect_view()}
                    </ul>
                })}
            </details>
        </li>
    }
}

#[component]
fn ModelEntry(model: ModelRun) -> impl IntoView {
    let kind = match &model.strategy {
        Some(strategy) => format!("{} ({strategy})", model.materialization),
        None => model.materialization.clone(),
    };
    let counts = format!(
        "+{} inserted · ~{} updated · −{} deleted · {} rows after · {} ms",
        model.rows_inserted, model.rows_updated, model.rows_deleted, model.rows_after, model.duration_ms
    );
    let counts = if model.status == RunStatus::Skipped { "skipped: something it reads failed".to_string() } else { counts };
    view! {
        <div class="model-run">
            <h4>{model.name.clone()} " " <span class="kind">{kind}</span></h4>
            <p class="counts">{counts}</p>
            {(!model.phases.is_empty()).then(|| view! {
                <p class="phases" data-testid="run-phases" title="where the run's time went">{model.phases.text()}</p>
            })}
            {model.error.clone().map(|e| view! { <p class="run-error">{e}</p> })}
            {(!model.compiled_sql.is_empty()).then(|| view! {
                <details class="sql"><summary>"compiled SQL"</summary><pre tabindex="0">{model.compiled_sql.clone()}</pre></details>
            })}
            {(!model.plan.is_empty()).then(|| view! {
                <details class="sql"><summary>"plan with metrics (what the run cost)"</summary><pre tabindex="0" data-testid="run-plan">{model.plan.clone()}</pre></details>
            })}
        </div>
    }
}
