//! The page's sections. Each takes the session (a `StoredValue`, so closures stay `Copy`) and
//! reads its signals.

mod backfill;
mod chart;
mod code_editor;
mod compare;
mod data;
mod import;
mod lesson;
mod lineage;
mod paged_table;
mod partitions;
mod project;
mod runs;
mod scratchpad;
mod share;
mod shortcuts;
mod tables;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::ui::session::Shared;

pub type SessionRef = StoredValue<Shared, LocalStorage>;

/// Starts what a click asks of the session. Its outcome is already on the page: the session
/// shows a failure in its error banner (`Session::report`) and publishes what succeeded.
fn start<T: 'static>(request: impl std::future::Future<Output = crate::error::Result<T>> + 'static) {
    leptos::task::spawn_local(async move {
        let _shown_by_the_session = request.await;
    });
}

#[component]
pub fn App(session: SessionRef) -> impl IntoView {
    let (progress, error, crash_details, view_state) = session.with_value(|s| (s.progress, s.error, s.crash_details, s.view));
    Effect::new(move |_| view_state.with(crate::ui::saved_view::save));
    let reset = move |_| {
        let confirmed = web_sys::window()
            .and_then(|w| w.confirm_with_message("Reset: forget every loaded file, table, partition and run, and start over with the sample?").ok())
            .unwrap_or(false);
        if confirmed {
            let s = session.get_value();
            leptos::task::spawn_local(async move { s.reset().await });
        }
    };
    let cancel = move |_| session.with_value(|s| s.cancel());
    let elapsed = elapsed_seconds(progress);
    // What a screen reader hears: each long operation's steps, then how it ended.
    let announcement = Memo::new(move |previous: Option<&String>| match progress.with(|p| p.as_ref().map(|p| p.label.clone())) {
        Some(label) => label,
        None if previous.is_some_and(|p| !p.is_empty()) => error.get().map_or("Done".to_string(), |e| format!("Failed: {e}")),
        None => String::new(),
    });
    view! {
        <header class="top">
            <h1>"Backfill"</h1>
            <p class="tagline">"Partitioned incremental models, the dbt + Dagster lesson, in your browser"</p>
            <div class="status" data-testid="status">
                {move || match progress.get() {
                    // One step of unknown length: an indeterminate bar, which moves by itself.
                    Some(p) if p.total <= 1 => view! {
                        <span class="busy">{p.label.clone()}</span>
                        <progress data-testid="progress"></progress>
                    }.into_any(),
                    Some(p) => view! {
                        <span class="busy">{p.label.clone()}</span>
                        <progress data-testid="progress" max=p.total.to_string() value=p.done.to_string()></progress>
                    }.into_any(),
                    None => view! { <span class="idle">"Ready"</span> }.into_any(),
                }}
                {move || elapsed.get().map(|seconds| view! { <span class="elapsed" data-testid="elapsed">{format!("{seconds} s")}</span> })}
                <Show when=move || progress.with(|p| p.as_ref().is_some_and(|p| p.cancellable))>
                    <button class="cancel" data-testid="cancel-button" on:click=cancel>"Cancel"</button>
                </Show>
            </div>
            <share::Share session=session />
            <ThemeToggle />
            <shortcuts::Shortcuts />
            <button class="reset" data-testid="reset-button" on:click=reset>"Reset"</button>
        </header>
        <p class="visually-hidden" role="status" aria-live="polite" data-testid="announcer">{announcement}</p>
        {move || error.get().map(|message| view! {
            <div class="error" role="alert" data-testid="error-message">
                <span>{message}</span>
                {move || crash_details.get().map(|details| view! { <CopyDetails details /> })}
                <button class="dismiss" on:click=move |_| { error.set(None); crash_details.set(None); }>"×"</button>
            </div>
        })}
        <main class="layout">
            <section class="panel chart-panel"><chart::DailyChart session=session /></section>
            <section class="panel lesson-panel"><lesson::Lesson session=session /></section>
            <section class="panel compare-panel"><compare::Compare session=session /></section>
            <section class="panel partitions-panel"><partitions::Partitions session=session /></section>
            <section class="panel runs-panel"><runs::Runs session=session /></section>
            <section class="panel data-panel"><data::Data session=session /></section>
            <section class="panel project-panel"><project::ProjectView session=session /></section>
            <section class="panel scratch-panel"><scratchpad::Scratchpad session=session /></section>
            <section class="panel tables-panel"><tables::Tables session=session /></section>
        </main>
    }
}

/// Dark mode on or off, over the system's choice.
#[component]
fn ThemeToggle() -> impl IntoView {
    let dark = RwSignal::new(crate::ui::theme::is_dark());
    let toggle = move |_| {
        let next = !dark.get_untracked();
        crate::ui::theme::choose(next);
        dark.set(next);
    };
    view! {
        <button class="theme" data-testid="theme-toggle" aria-pressed=move || dark.get().to_string() on:click=toggle>
            "Dark mode"
        </button>
    }
}

/// What happened, and a button that copies it to the clipboard for a bug report.
#[component]
fn CopyDetails(details: String) -> impl IntoView {
    let shown = details.clone();
    // None until clicked; then whether the clipboard took it.
    let copied = RwSignal::new(None::<bool>);
    let copy = move |_| {
        let Some(window) = web_sys::window() else { return };
        let written = wasm_bindgen_futures::JsFuture::from(window.navigator().clipboard().write_text(&details));
        leptos::task::spawn_local(async move { copied.set(Some(written.await.is_ok())) });
    };
    view! {
        <details class="crash-details">
            <summary>"What happened"</summary>
            <pre data-testid="crash-details">{shown}</pre>
        </details>
        <button class="copy-details" data-testid="copy-details" on:click=copy>
            {move || match copied.get() {
                None => "Copy details",
                Some(true) => "Copied",
                Some(false) => "Could not copy: select the text under \"What happened\"",
            }}
        </button>
    }
}

/// Whole seconds since the running operation started, ticking while it runs: the engine
/// works in a worker, so the page keeps counting.
fn elapsed_seconds(progress: RwSignal<Option<crate::view::protocol::Progress>>) -> Signal<Option<u64>> {
    let since = RwSignal::new(None::<f64>);
    let now = RwSignal::new(js_sys::Date::now());
    Effect::new(move |_| {
        let busy = progress.with(Option::is_some);
        match (busy, since.get_untracked()) {
            (false, Some(_)) => since.set(None),
            (true, None) => since.set(Some(js_sys::Date::now())),
            _ => {}
        }
    });
    set_interval(move || now.set(js_sys::Date::now()), std::time::Duration::from_millis(250));
    Signal::derive(move || since.get().map(|start| ((now.get() - start).max(0.0) / 1000.0) as u64))
}

/// Offers `bytes` as a download named `name`.
fn save_file(name: &str, kind: &str, bytes: &js_sys::Uint8Array) {
    let array = js_sys::Array::of1(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(kind);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&array, &options) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    let anchor = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("a").ok())
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok());
    if let Some(anchor) = anchor {
        anchor.set_href(&url);
        anchor.set_download(name);
        anchor.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}
