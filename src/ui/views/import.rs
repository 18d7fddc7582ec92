//! Importing a dbt project: drop a zip or a folder, or pick either. The project replaces the
//! current one (the tables stay); one that does not parse changes nothing and says why.

use js_sys::{Array, Promise, Reflect};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::SessionRef;

#[component]
pub fn ImportProject(session: SessionRef) -> impl IntoView {
    let over = RwSignal::new(false);
    let imported = RwSignal::new(None::<String>);
    let import = move |name: String, files: Vec<(String, Vec<u8>)>| {
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let count = files.len();
            if s.import_project(&name, files).await.is_ok() {
                imported.set(Some(format!("Imported {name} ({count} file(s)). Build it to see its tables.")));
            }
        });
    };
    let on_pick = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        let files: Vec<web_sys::File> = input.files().map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
        input.set_value("");
        leptos::task::spawn_local(async move {
            let mut read = Vec::new();
            for file in files {
                // A folder pick gives each file its path below the chosen folder.
                let path = Reflect::get(&file, &"webkitRelativePath".into()).ok().and_then(|p| p.as_string()).filter(|p| !p.is_empty());
                if let Some(bytes) = bytes_of(&file).await {
                    read.push((path.unwrap_or_else(|| file.name()), bytes));
                }
            }
            let name = read.first().map(|(p, _)| p.split('/').next().unwrap_or(p).to_string()).unwrap_or_default();
            import(name, read);
        });
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        over.set(false);
        let Some(transfer) = ev.data_transfer() else { return };
        let items = transfer.items();
        let entries: Vec<web_sys::FileSystemEntry> =
            (0..items.length()).filter_map(|i| items.get(i)).filter_map(|item| item.webkit_get_as_entry().ok().flatten()).collect();
        // Files without entries (dropped by a script, or by browsers without the entries API).
        let files: Vec<web_sys::File> = transfer.files().map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
        leptos::task::spawn_local(async move {
            let mut read = Vec::new();
            for entry in &entries {
                collect(entry, &mut read).await;
            }
            if entries.is_empty() {
                for file in &files {
                    read.extend(bytes_of(file).await.map(|bytes| (file.name(), bytes)));
                }
            }
            let name = entries.first().map(|e| e.name()).or_else(|| files.first().map(|f| f.name())).unwrap_or_default();
            import(name, read);
        });
    };
    view! {
        <label
            class=move || if over.get() { "drop over" } else { "drop" }
            data-testid="project-import"
            on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); over.set(true); }
            on:dragleave=move |_| over.set(false)
            on:drop=on_drop
        >
            <span>"Import a dbt project: drop its folder or a .zip here, or pick a "</span>
            <input type="file" accept=".zip" data-testid="project-import-zip" on:change=on_pick />
            <span>" or a folder "</span>
            <input type="file" prop:webkitdirectory=true data-testid="project-import-folder" on:change=on_pick />
        </label>
        {move || imported.get().map(|message| view! { <p class="note" data-testid="project-imported">{message}</p> })}
    }
}

/// Every file below `entry`, with its path from the dropped item (folders walked).
async fn collect(entry: &web_sys::FileSystemEntry, out: &mut Vec<(String, Vec<u8>)>) {
    let path = entry.full_path().trim_start_matches('/').to_string();
    if entry.is_file() {
        let file_entry: &web_sys::FileSystemFileEntry = entry.unchecked_ref();
        let promise = Promise::new(&mut |resolve, reject| file_entry.file_with_callback_and_callback(&resolve, &reject));
        if let Ok(file) = JsFuture::from(promise).await
            && let Some(bytes) = bytes_of(file.unchecked_ref()).await
        {
            out.push((path, bytes));
        }
        return;
    }
    let folder: &web_sys::FileSystemDirectoryEntry = entry.unchecked_ref();
    let reader = folder.create_reader();
    // A reader hands out entries in batches until it returns an empty one.
    loop {
        let promise = Promise::new(&mut |resolve, reject| {
            let _ = reader.read_entries_with_callback_and_callback(&resolve, &reject);
        });
        let Ok(batch) = JsFuture::from(promise).await else { break };
        let batch: Array = batch.unchecked_into();
        if batch.length() == 0 {
            break;
        }
        for child in batch.iter() {
            Box::pin(collect(child.unchecked_ref(), out)).await;
        }
    }
}

async fn bytes_of(file: &web_sys::File) -> Option<Vec<u8>> {
    let buffer = JsFuture::from(file.array_buffer()).await.ok()?;
    Some(js_sys::Uint8Array::new(&buffer).to_vec())
}
