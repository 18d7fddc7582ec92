//! Trip files: pick or drop TLC Parquet/CSV files (several at once), each with its own
//! progress and outcome; a card per loaded month; more sample months generated in the page.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::SessionRef;
use crate::orchestrate::state::LoadedFile;
use crate::worker::wire::Payload;

/// One file being read and ingested.
#[derive(Debug, Clone, PartialEq)]
struct Upload {
    id: usize,
    name: String,
    bytes_read: f64,
    bytes_total: f64,
    outcome: Option<Result<usize, String>>,
}

#[component]
pub fn Data(session: SessionRef) -> impl IntoView {
    let files = session.with_value(|s| s.published.files);
    let uploads = RwSignal::new(Vec::<Upload>::new());
    let over = RwSignal::new(false);
    let take_files = move |files: web_sys::FileList| {
        let files: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            for file in files {
                let id = uploads.with_untracked(|u| u.len());
                uploads.update(|u| {
                    u.push(Upload { id, name: file.name(), bytes_read: 0.0, bytes_total: file.size(), outcome: None })
                });
                let bytes = read_with_progress(&file, |read| uploads.update(|u| u[id].bytes_read = read)).await;
                let outcome = match bytes {
                    Ok(bytes) => s.load(&file.name(), bytes, None).await.map(|f| f.stats.rows).map_err(|e| e.to_string()),
                    Err(message) => Err(message),
                };
                uploads.update(|u| u[id].outcome = Some(outcome));
            }
        });
    };
    let on_change = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        if let Some(files) = input.files() {
            take_files(files);
        }
        input.set_value("");
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        over.set(false);
        if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
            take_files(files);
        }
    };
    let month = RwSignal::new("2023-04".to_string());
    let rows = RwSignal::new("200000".to_string());
    let generate = move |_| {
        let s = session.get_value();
        let (month, rows) = (month.get_untracked(), rows.get_untracked().parse().unwrap_or(200_000));
        super::start(async move { s.generate(&month, rows).await });
    };
    view! {
        <h2>"Trip files"</h2>
        <label
            class=move || if over.get() { "drop over" } else { "drop" }
            on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); over.set(true); }
            on:dragleave=move |_| over.set(false)
            on:drop=on_drop
        >
            <span>"Drop TLC yellow taxi files here (Parquet or CSV, several at once), or pick them: "</span>
            <input type="file" multiple accept=".parquet,.csv" data-testid="file-input" on:change=on_change />
        </label>
        <ul class="uploads">
            {move || uploads.get().into_iter().rev().map(|u| {
                let state = match &u.outcome {
                    None => "reading".to_string(),
                    Some(Ok(rows)) => format!("{rows} rows loaded"),
                    Some(Err(e)) => e.clone(),
                };
                let class = match &u.outcome { Some(Err(_)) => "upload failed", Some(Ok(_)) => "upload done", None => "upload" };
                view! {
                    <li class=class data-testid="upload">
                        <span class="name">{u.name.clone()}</span>
                        <progress max=u.bytes_total.max(1.0).to_string() value=u.bytes_read.to_string()></progress>
                        <span class="bytes">{format!("{} / {}", size(u.bytes_read), size(u.bytes_total))}</span>
                        <span class="outcome">{state}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
        <div class="generate">
            <span>"Generate a sample month: "</span>
            <input type="month" aria-label="Month to generate" data-testid="generate-month" prop:value=move || month.get() on:input=move |ev| month.set(event_target_value(&ev)) />
            <select aria-label="Trips to generate" data-testid="generate-rows" on:change=move |ev| rows.set(event_target_value(&ev))>
                <option value="50000">"50,000 rows"</option>
                <option value="200000" selected>"200,000 rows"</option>
                <option value="1000000">"1,000,000 rows"</option>
                <option value="3000000">"3,000,000 rows (a real month's size)"</option>
            </select>
            <button data-testid="generate-button" on:click=generate>"Generate"</button>
        </div>
        <div class="files">
            {move || files.with(|files| files.iter().cloned().map(|f| view! { <FileCard file=f /> }).collect_view())}
        </div>
    }
}

#[component]
fn FileCard(file: LoadedFile) -> impl IntoView {
    let stats = file.stats;
    let range = match (&stats.pickup_min, &stats.pickup_max) {
        (Some(min), Some(max)) => format!("{min} → {max}"),
        _ => "no pickups".to_string(),
    };
    view! {
        <article class="file-card" data-testid="file-card" data-month=file.month.clone()>
            <h3>{file.month.clone()}</h3>
            <p class="file-name">{file.name.clone()}</p>
            <dl>
                <dt>"rows"</dt><dd>{stats.rows.to_string()}</dd>
                <dt>"pickups"</dt><dd>{range}</dd>
                <dt>"outside the month"</dt><dd>{stats.outside_month.to_string()}</dd>
                <dt>"negative amounts"</dt><dd>{stats.negative_amounts.to_string()}</dd>
            </dl>
        </article>
    }
}

fn size(bytes: f64) -> String {
    if bytes >= 1e6 { format!("{:.1} MB", bytes / 1e6) } else { format!("{:.0} kB", bytes / 1e3) }
}

/// The file as read now, its stream chunk by chunk to report progress. The chunks stay JS
/// buffers joined by a Blob that the worker reads: never copied into the page's wasm memory,
/// nor made one buffer on the main thread.
async fn read_with_progress(file: &web_sys::File, progress: impl Fn(f64)) -> Result<Payload, String> {
    let fail = |_| format!("{}: the browser could not read the file", file.name());
    let reader: web_sys::ReadableStreamDefaultReader = file.stream().get_reader().unchecked_into();
    let chunks = js_sys::Array::new();
    let mut read = 0.0;
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(fail)?;
        let done = js_sys::Reflect::get(&step, &"done".into()).map_err(fail)?;
        if done.as_bool().unwrap_or(true) {
            break;
        }
        let chunk = js_sys::Reflect::get(&step, &"value".into()).map_err(fail)?;
        read += f64::from(js_sys::Uint8Array::new(&chunk).length());
        chunks.push(&chunk);
        progress(read);
    }
    web_sys::Blob::new_with_u8_array_sequence(&chunks).map(Payload::Blob).map_err(fail)
}
