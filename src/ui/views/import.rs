//! Importing a dbt project: drop a zip or a folder, or pick either. The project replaces the
//! current one (the tables stay); one that does not parse changes nothing and says why. The
//! worker decides what the project is ([`crate::dbt::import`]); the page only leaves unread what
//! that filter would drop anyway.

use js_sys::{Array, Promise, Reflect};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::SessionRef;
use crate::dbt::project::ProjectFiles;

#[component]
pub fn ImportProject(session: SessionRef) -> impl IntoView {
    let over = RwSignal::new(false);
    let imported = RwSignal::new(None::<String>);
    // Only the files a project reads are read (a folder's build output, environments and data
    // are listed, never loaded), and not at all when they are over the limits.
    let import = move |name: String, files: Vec<(String, web_sys::File)>| {
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let bytes = files.iter().map(|(_, file)| file.size() as u64).sum();
            if let Err(e) = ProjectFiles::check_size(&name, files.len(), bytes) {
                s.error.set(Some(e.to_string()));
                return;
            }
            let mut read = Vec::new();
            for (path, file) in files {
                read.extend(bytes_of(&file).await.map(|bytes| (path, bytes)));
            }
            let count = read.len();
            if s.import_project(&name, read).await.is_ok() {
                imported.set(Some(format!("Imported {name} ({count} file(s)). Build it to see its tables.")));
            }
        });
    };
    let on_pick = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
        let files: Vec<web_sys::File> = input.files().map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
        input.set_value("");
        // A folder pick gives each file its path below the chosen folder; a zip has none.
        let picked: Vec<(String, web_sys::File)> = files
            .into_iter()
            .filter_map(|file| match Reflect::get(&file, &"webkitRelativePath".into()).ok().and_then(|p| p.as_string()).filter(|p| !p.is_empty()) {
                Some(path) => ProjectFiles::wants(&path).then_some((path, file)),
                None => Some((file.name(), file)),
            })
            .collect();
        let name = picked.first().map(|(p, _)| p.split('/').next().unwrap_or(p).to_string()).unwrap_or_default();
        import(name, picked);
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
            let mut found = Vec::new();
            for entry in &entries {
                list(entry, true, &mut found).await;
            }
            if entries.is_empty() {
                found.extend(files.iter().map(|file| (file.name(), file.clone())));
            }
            let name = entries.first().map(|e| e.name()).or_else(|| files.first().map(|f| f.name())).unwrap_or_default();
            import(name, found);
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

/// The files below the dropped `entry` that a project reads, with their paths from it: skipped
/// folders are not walked and nothing is read yet. A file dropped by itself is kept (a zip).
async fn list(entry: &web_sys::FileSystemEntry, dropped: bool, out: &mut Vec<(String, web_sys::File)>) {
    let path = entry.full_path().trim_start_matches('/').to_string();
    if entry.is_file() {
        if dropped || ProjectFiles::wants(&path) {
            let file_entry: &web_sys::FileSystemFileEntry = entry.unchecked_ref();
            let promise = Promise::new(&mut |resolve, reject| file_entry.file_with_callback_and_callback(&resolve, &reject));
            if let Ok(file) = JsFuture::from(promise).await {
                out.push((path, file.unchecked_into()));
            }
        }
        return;
    }
    if !dropped && ProjectFiles::skips_folder(&path) {
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
            Box::pin(list(child.unchecked_ref(), false, out)).await;
        }
    }
}

async fn bytes_of(file: &web_sys::File) -> Option<Vec<u8>> {
    let buffer = JsFuture::from(file.array_buffer()).await.ok()?;
    Some(js_sys::Uint8Array::new(&buffer).to_vec())
}
