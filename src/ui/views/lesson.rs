//! The guided lesson: six steps, each run with one click. A step shows its explanation, the
//! dbt commands it ran, the compiled SQL and its diff from the previous step, what the runs
//! did to daily_metrics row by row (old → new values), the partitions that went stale, and
//! where the table still differs from the truth.

use leptos::prelude::*;

use super::SessionRef;
use crate::course::lesson::{self, StepOutcome};
use crate::dbt::table_diff::{ChangedRow, Row, TableDiff};
use crate::orchestrate::partitions::day_text;
use crate::view::chart::row_date;
use crate::view::line_diff::{self, Line};

#[component]
pub fn Lesson(session: SessionRef) -> impl IntoView {
    let published = session.with_value(|s| s.published);
    let steps = lesson::steps();
    let titles: Vec<&'static str> = steps.iter().map(|s| s.title).collect();
    let texts: Vec<&'static str> = steps.iter().map(|s| s.text).collect();
    let count = titles.len();
    let done = Memo::new(move |_| published.lesson.with(Vec::len));
    // The step shown: the one chosen, else the latest done.
    let chosen = RwSignal::new(None::<usize>);
    let shown = Memo::new(move |_| chosen.get().filter(|n| *n <= done.get()).or(Some(done.get())).filter(|n| *n > 0));
    let run = move |number: usize| {
        // Starting the lesson replaces the session's data: ask first if there is work of the
        // user's own in it (more than the first visit's sample and build).
        let own_work = published.lesson.with_untracked(Vec::is_empty) && published.actions.with_untracked(|a| a.len() > 2);
        let message = "The lesson replaces this session's files, tables and runs with its own data. \
                       Share or export first if you want to keep them. Start the lesson?";
        if number == 1 && own_work && !web_sys::window().and_then(|w| w.confirm_with_message(message).ok()).unwrap_or(false) {
            return;
        }
        let s = session.get_value();
        chosen.set(None);
        super::start(async move { s.lesson_step(number).await });
    };
    let titles_for_list = titles.clone();
    view! {
        <h2>"Lesson: why partition an incremental model"</h2>
        <ol class="lesson-steps">
            {titles_for_list.into_iter().enumerate().map(|(i, title)| {
                let number = i + 1;
                let class = move || {
                    let state = if number <= done.get() { "done" } else if number == done.get() + 1 { "next" } else { "later" };
                    let current = if shown.get() == Some(number) { " shown" } else { "" };
                    format!("lesson-step {state}{current}")
                };
                view! {
                    <li class=class data-testid=format!("lesson-step-{number}")>
                        <button disabled={move || number > done.get()} on:click=move |_| chosen.set(Some(number))>
                            {format!("{number}. {title}")}
                        </button>
                    </li>
                }
            }).collect_view()}
        </ol>
        <div class="lesson-actions">
            {move || (done.get() < count).then(|| {
                let next = done.get() + 1;
                view! {
                    <button class="primary" data-testid="lesson-run-step" on:click=move |_| run(next)>
                        {format!("Run step {next}: {}", titles[next - 1])}
                    </button>
                }
            })}
            {move || (done.get() > 0).then(|| view! {
                <button data-testid="lesson-restart" on:click=move |_| run(1)>"Start over"</button>
            })}
        </div>
        {move || match shown.get() {
            None => view! {
                <p class="note">
                    "Run step 1 to start. The lesson replaces this session's data with two generated months; "
                    "Reset brings the default sample back."
                </p>
            }.into_any(),
            Some(number) => {
                let (outcome, previous) = published.lesson.with(|l| (l.get(number - 1).cloned(), number.checked_sub(2).and_then(|i| l.get(i).cloned())));
                match outcome {
                    Some(outcome) => view! { <StepView outcome=outcome previous=previous text=texts[number - 1] /> }.into_any(),
                    None => ().into_any(),
                }
            }
        }}
    }
}

#[component]
fn StepView(outcome: StepOutcome, previous: Option<StepOutcome>, text: &'static str) -> impl IntoView {
    let sql_lines: Vec<(String, String)> = match &previous {
        Some(previous) => line_diff::lines(&previous.compiled_sql, &outcome.compiled_sql)
            .into_iter()
            .map(|line| match line {
                Line::Same(l) => ("same".to_string(), format!("  {l}")),
                Line::Added(l) => ("added".to_string(), format!("+ {l}")),
                Line::Removed(l) => ("removed".to_string(), format!("- {l}")),
            })
            .collect(),
        None => outcome.compiled_sql.lines().map(|l| ("same".to_string(), format!("  {l}"))).collect(),
    };
    let sql_changed = sql_lines.iter().any(|(class, _)| class != "same");
    let sql_title = match (&previous, sql_changed) {
        (None, _) => "Compiled SQL of daily_metrics".to_string(),
        (Some(p), true) => format!("Compiled SQL of daily_metrics, changes from step {}", p.step),
        (Some(p), false) => format!("Compiled SQL of daily_metrics (the same as in step {})", p.step),
    };
    view! {
        <article class="lesson-step-view" data-testid="lesson-step-view" data-step=outcome.step.to_string()>
            <p>{text}</p>
            <h3>"Runs"</h3>
            <ul class="commands">
                {outcome.commands.iter().map(|c| view! { <li><code>{c.clone()}</code></li> }).collect_view()}
            </ul>
            <h3>{sql_title}</h3>
            <pre class="sql-diff" tabindex="0" data-testid="lesson-sql-diff">
                {sql_lines.into_iter().map(|(class, line)| view! { <span class=class>{line}"\n"</span> }).collect_view()}
            </pre>
            {(!outcome.stale.is_empty()).then(|| view! {
                <p class="note stale-note" data-testid="lesson-stale">
                    {format!("Went stale on the way: {}.", outcome.stale.join(", "))}
                </p>
            })}
            <h3>"What the step did to daily_metrics"</h3>
            {match &outcome.diff {
                Some(diff) => view! { <DiffTable diff=diff.clone() testid="lesson-diff" /> }.into_any(),
                None => view! { <p class="note">"The table is too large to show row by row."</p> }.into_any(),
            }}
            <h3>"Against the truth (daily_metrics rebuilt from scratch)"</h3>
            {match &outcome.drift {
                Some(drift) if drift.is_empty() => view! {
                    <p class="truth ok" data-testid="lesson-drift" data-days="">"daily_metrics equals the truth."</p>
                }.into_any(),
                Some(drift) => {
                    let days: Vec<String> = drift.added.iter().chain(drift.removed.iter()).chain(drift.changed.iter().map(|c| &c.new)).map(day_of).collect();
                    let mut sorted = days.clone();
                    sorted.sort();
                    view! {
                        <p class="truth off" data-testid="lesson-drift" data-days=sorted.join(",")>
                            {format!("{} day(s) differ from the truth: {}. Table value → true value:", sorted.len(), sorted.join(", "))}
                        </p>
                        <DiffTable diff=drift.clone() testid="lesson-drift-table" />
                    }.into_any()
                }
                None => view! { <p class="note">"The truth could not be computed."</p> }.into_any(),
            }}
        </article>
    }
}

/// A diff as a table: added rows, changed rows with their changed cells as old → new,
/// removed rows, and a count of rows rewritten unchanged.
#[component]
pub fn DiffTable(diff: TableDiff, testid: &'static str) -> impl IntoView {
    let summary = format!(
        "{} added, {} changed, {} removed, {} rewritten unchanged",
        diff.added.len(),
        diff.changed.len(),
        diff.removed.len(),
        diff.rewritten.len()
    );
    let rewritten: Vec<String> = diff.rewritten.iter().map(day_of).collect();
    let columns = diff.columns.clone();
    let rows = diff
        .added
        .iter()
        .map(|r| ("added", r.clone(), None))
        .chain(diff.changed.iter().map(|c| ("changed", c.new.clone(), Some(c.clone()))))
        .chain(diff.removed.iter().map(|r| ("removed", r.clone(), None)))
        .collect::<Vec<(&str, Row, Option<ChangedRow>)>>();
    view! {
        <div class="diff" data-testid=testid
            data-added=diff.added.len().to_string()
            data-changed=diff.changed.len().to_string()
            data-removed=diff.removed.len().to_string()
            data-rewritten=diff.rewritten.len().to_string()>
            <p class="diff-summary">{summary}</p>
            {(!rewritten.is_empty()).then(|| view! {
                <p class="note">{format!("Rewritten with the values they had: {}.", rewritten.join(", "))}</p>
            })}
            {(!rows.is_empty()).then(|| view! {
                <div class="table-scroll" tabindex="0">
                    <table class="diff-table">
                        <thead><tr><th></th>{columns.iter().map(|c| view! { <th>{c.clone()}</th> }).collect_view()}</tr></thead>
                        <tbody>
                            {rows.into_iter().map(|(kind, row, change)| {
                                let changed_columns = change.as_ref().map(TableDiff::changed_columns).unwrap_or_default();
                                let mark = match kind { "added" => "+", "removed" => "−", _ => "~" };
                                view! {
                                    <tr class=kind data-testid="diff-row" data-kind=kind data-key=day_of(&row)>
                                        <td class="mark">{mark}</td>
                                        {row.iter().enumerate().map(|(i, value)| {
                                            match change.as_ref().filter(|_| changed_columns.contains(&i)) {
                                                Some(c) => view! {
                                                    <td class="cell-changed" data-column=columns[i].clone()>
                                                        <span class="old">{show(c.old.get(i))}</span>" → "<span class="new">{show(Some(value))}</span>
                                                    </td>
                                                }.into_any(),
                                                None => view! { <td>{show(Some(value))}</td> }.into_any(),
                                            }
                                        }).collect_view()}
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
        </div>
    }
}

/// A row's key as a reader knows it: the day of a `date_of_business`, else the first value.
fn day_of(row: &Row) -> String {
    row_date(row).map_or_else(|| show(row.first()), day_text)
}

/// A value as the page shows it: doubles to 6 decimals, NULL spelled out.
pub(super) fn show(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => "NULL".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{}", (f * 1e6).round() / 1e6),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}
