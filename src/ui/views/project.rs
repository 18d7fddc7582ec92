//! The project: its models in lineage order (sources → staging → marts) with their
//! materializations, and an editor for a model's SQL + Jinja whose compiled SQL is
//! recompiled as you type, for a chosen context (full refresh, incremental, a partition's vars).

use leptos::prelude::*;

use super::SessionRef;
use super::code_editor::{CodeEditor, highlighted};
use super::lineage::LineageGraph;
use crate::error::Error;
use crate::view::compile_preview::{self, Preview};

#[component]
pub fn ProjectView(session: SessionRef) -> impl IntoView {
    let project = session.with_value(|s| s.published.project);
    let selected = RwSignal::new("daily_metrics".to_string());
    let edits = RwSignal::new(std::collections::BTreeMap::<String, String>::new());
    let incremental = RwSignal::new(true);
    let day = RwSignal::new("2023-03-04".to_string());
    let source = move || {
        let name = selected.get();
        edits.with(|e| e.get(&name).cloned()).or_else(|| project.with(|p| p.as_ref().and_then(|p| p.model(&name)).map(|m| m.sql.clone()))).unwrap_or_default()
    };
    let compiled = Memo::new(move |_| {
        let preview = if incremental.get() { Preview::Partition(day.get()) } else { Preview::FullRefresh };
        let name = selected.get();
        let text = source();
        project.with(|p| match p {
            Some(project) => compile_preview::compiled(project, &name, &text, &preview),
            None => Err(Error::Usage("no project".into())),
        })
    });
    let export = move |_| {
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            if let Ok(zip) = s.export_project().await {
                super::save_file("backfill-dbt-project.zip", "application/zip", &zip);
            }
        });
    };
    view! {
        <h2>"Project"</h2>
        <p class="hint">
            <button data-testid="export-button" on:click=export>"Export as a dbt project (.zip)"</button>
            " dbt-core + dbt-duckdb project, the Dagster code for the daily partitions, and a README with the commands."
        </p>
        <super::import::ImportProject session=session />
        {move || {
            let warnings = project.with(|p| p.as_ref().map(|p| p.warnings.clone()).unwrap_or_default());
            (!warnings.is_empty()).then(|| view! {
                <ul class="note" data-testid="project-warnings">
                    {warnings.into_iter().map(|w| view! { <li>{format!("Warning: {w}")}</li> }).collect_view()}
                </ul>
            })
        }}
        <LineageGraph session selected />
        <div class="compile-context">
            <span>"Compile for: "</span>
            <label><input type="radio" name="ctx" prop:checked=move || !incremental.get() on:change=move |_| incremental.set(false) />"full refresh"</label>
            <label><input type="radio" name="ctx" prop:checked=move || incremental.get() on:change=move |_| incremental.set(true) />"incremental, partition "</label>
            <input type="date" aria-label="Partition day" prop:value=move || day.get() on:input=move |ev| day.set(event_target_value(&ev)) />
        </div>
        <div class="editor-pair">
            <div class="editor">
                <h3>{move || format!("models: {}", selected.get())}</h3>
                {move || {
                    let description = project.with(|p| p.as_ref().and_then(|p| p.model(&selected.get())).and_then(|m| m.description.clone()));
                    description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).map(|d| view! {
                        <p class="model-description" data-testid="model-description">{d}</p>
                    })
                }}
                <CodeEditor text=Signal::derive(source) testid="model-editor"
                    label=Signal::derive(move || format!("SQL of {}", selected.get()))
                    error_at=Signal::derive(move || {
                        let path = project.with(|p| p.as_ref().and_then(|p| p.model(&selected.get())).map(|m| m.path.clone()))?;
                        compiled.with(|c| c.as_ref().err().and_then(|e| e.position_in(&path)))
                    })
                    on_input=move |text| { let name = selected.get_untracked(); edits.update(|e| { e.insert(name, text); }); } />
                {move || {
                    let dirty = edits.with(|e| e.contains_key(&selected.get()));
                    dirty.then(|| {
                        let save = move |_| {
                            let name = selected.get_untracked();
                            let Some(text) = edits.with_untracked(|e| e.get(&name).cloned()) else { return };
                            let s = session.get_value();
                            leptos::task::spawn_local(async move {
                                if s.set_model_sql(&name, &text).await.is_ok() {
                                    edits.update(|e| { e.remove(&name); });
                                }
                            });
                        };
                        view! {
                            <div class="editor-actions">
                                <button data-testid="editor-save" on:click=save>"Use this version"</button>
                                <button on:click=move |_| edits.update(|e| { e.remove(&selected.get_untracked()); })>"Discard edits"</button>
                            </div>
                        }
                    })
                }}
            </div>
            <div class="compiled">
                <h3>"compiled SQL"</h3>
                {move || match compiled.get() {
                    Ok(sql) => view! { <pre class="code-out" tabindex="0" aria-label="Compiled SQL" data-testid="compiled-sql">{highlighted(&sql, None)}</pre> }.into_any(),
                    Err(e) => view! { <pre class="code-out compile-error" tabindex="0" data-testid="compile-error">{e.to_string()}</pre> }.into_any(),
                }}
            </div>
        </div>
    }
}
