//! The SQL scratchpad (the dbt IDE's preview): a query over the session's tables in DuckDB's
//! dialect, `{{ ref('m') }}` and `{{ source(…) }}` compiled as `dbt show --inline` compiles
//! them; Ctrl/Cmd-Enter runs; rows paged; an error marked where it is. Recent queries are
//! kept in the page's view, so share links carry them.

use leptos::prelude::*;

use super::SessionRef;
use super::code_editor::CodeEditor;
use super::paged_table::PagedTable;
use crate::error::Error;
use crate::limits::Limit;
use crate::orchestrate::engine::INLINE;
use crate::view::protocol::TablePage;

const PAGE: usize = 25;
const FIRST_QUERY: &str = "select date_of_business, trip_count, average_amount\nfrom {{ ref('daily_metrics') }}\norder by trip_count desc\nlimit 10\n";

#[component]
pub fn Scratchpad(session: SessionRef) -> impl IntoView {
    let view_state = session.with_value(|s| s.view);
    let text = RwSignal::new(view_state.with_untracked(|v| v.queries.first().cloned()).unwrap_or_else(|| FIRST_QUERY.to_string()));
    // The query whose rows show, and which page of them.
    let shown = RwSignal::new(None::<String>);
    let page = RwSignal::new(0usize);
    let result = RwSignal::new(None::<Result<TablePage, Error>>);
    Effect::new(move |_| {
        let (Some(sql), offset) = (shown.get(), page.get() * PAGE) else { return };
        let s = session.get_value();
        leptos::task::spawn_local(async move { result.set(Some(s.show(&sql, offset, PAGE).await)) });
    });
    let run = Callback::new(move |()| {
        let sql = text.get_untracked();
        view_state.update(|v| {
            v.queries.retain(|q| *q != sql);
            v.queries.insert(0, sql.clone());
            v.queries.truncate(Limit::RecentQueries.max() as usize);
        });
        page.set(0);
        shown.set(Some(sql));
    });
    let file = format!("{INLINE}.sql");
    let error_at = Signal::derive(move || result.with(|r| r.as_ref().and_then(|r| r.as_ref().err()).and_then(|e| e.position_in(&file))));
    view! {
        <h2>"Scratchpad"</h2>
        <p class="hint">"A query over this session's tables, as dbt show --inline runs it: {{ ref('model') }} and {{ source('name', 'table') }} compile to the tables. Ctrl+Enter (⌘+Enter) runs."</p>
        <CodeEditor text=text on_input=move |t| text.set(t) error_at label="Scratchpad query" testid="scratch-input" on_run=run />
        <div class="editor-actions">
            <button class="primary" data-testid="scratch-run" on:click=move |_| run.run(())>"Run"</button>
        </div>
        {move || match result.get() {
            None => ().into_any(),
            Some(Err(e)) => view! { <p class="compile-error" role="alert" data-testid="scratch-error">{e.to_string()}</p> }.into_any(),
            Some(Ok(rows)) => view! { <PagedTable rows page size=PAGE testid="scratch-result" /> }.into_any(),
        }}
        {move || {
            let recent = view_state.with(|v| v.queries.clone());
            (!recent.is_empty()).then(|| view! {
                <h3 class="subhead">"Recent"</h3>
                <ul class="recent" data-testid="scratch-recent">
                    {recent.into_iter().map(|q| {
                        let label = q.lines().map(str::trim).collect::<Vec<_>>().join(" ");
                        view! { <li><button class="recent-query" title=q.clone() on:click=move |_| text.set(q.clone())>{label}</button></li> }
                    }).collect_view()}
                </ul>
            })
        }}
    }
}
