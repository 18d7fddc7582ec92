//! State in the browser: the Origin Private File System (OPFS). [`State`](crate::orchestrate::state::State)
//! saves through the synchronous [`Store`] interface into memory; [`BrowserStore::flush`] then
//! writes what changed to OPFS and drops it from memory (the engine holds the tables; their
//! Parquet bytes are only needed on the way to disk, and a month's are tens of megabytes). Table
//! files are immutable (a new name per version), so a flush writes new tables, then the
//! manifest, then removes tables no manifest names — the same order as the folder store, so an
//! interrupted flush leaves the previous state readable. Keys are stored under names from
//! [`store_names`](crate::orchestrate::store_names), one name per key.

use std::collections::{BTreeMap, BTreeSet};

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetFileOptions, FileSystemRemoveOptions, FileSystemWritableFileStream,
};

use crate::error::{Error, Result};
use crate::orchestrate::state::{MemoryStore, State, Store};
use crate::orchestrate::store_names::{key_of, name_of};

const FOLDER: &str = "backfill-state";
const MANIFEST: &str = "manifest.json";

pub struct BrowserStore {
    /// The state's OPFS folder, looked up once: two rounds of OPFS a flush otherwise.
    folder: FileSystemDirectoryHandle,
    /// Written since the last flush: all the store keeps in memory.
    pending: BTreeMap<String, Vec<u8>>,
    /// Keys in OPFS after the last flush, with the name each is stored under (an older
    /// session's names differ from today's).
    flushed: BTreeMap<String, String>,
    /// Flushed keys removed since: they leave OPFS at the next flush, after the manifest.
    removed: BTreeSet<String>,
    /// Removals under way (OPFS promises run whether or not they are awaited).
    removing: Vec<Promise>,
}

impl BrowserStore {
    /// Lists what the last session flushed (nothing on a first visit); [`BrowserStore::restore`]
    /// reads it. Files under names Backfill does not write are left alone.
    pub async fn open() -> Result<BrowserStore> {
        let folder = folder().await?;
        let flushed = file_names(&folder).await?.into_iter().filter_map(|name| Some((key_of(&name)?, name))).collect();
        Ok(BrowserStore { folder, pending: BTreeMap::new(), flushed, removed: BTreeSet::new(), removing: Vec::new() })
    }

    /// Removes everything saved in this browser, whatever it is: a saved session that cannot
    /// be read, or not even listed, can still be cleared.
    pub async fn wipe() -> Result<()> {
        folder().await?;
        let options = FileSystemRemoveOptions::new();
        options.set_recursive(true);
        await_promise(root().await?.remove_entry_with_options(FOLDER, &options), FOLDER).await?;
        Ok(())
    }

    pub fn has_state(&self) -> bool {
        self.pending.contains_key(MANIFEST) || (self.flushed.contains_key(MANIFEST) && !self.removed.contains(MANIFEST))
    }

    /// The state the last session flushed, read from OPFS once; its files' bytes are dropped
    /// as soon as the tables are decoded.
    pub async fn restore(&self) -> Result<Option<State>> {
        if !self.has_state() {
            return Ok(None);
        }
        let mut files = MemoryStore::default();
        for (key, name) in &self.flushed {
            files.0.insert(key.clone(), read(&self.folder, name).await?);
        }
        files.0.extend(self.pending.iter().map(|(key, bytes)| (key.clone(), bytes.clone())));
        State::load(&files).map(Some)
    }

    /// Writes new keys and the manifest, then starts removing keys that are gone
    /// ([`BrowserStore::removals`] waits for them). What is written leaves memory; what fails
    /// stays pending for the next flush.
    pub async fn flush(&mut self) -> Result<()> {
        let mut writes: Vec<String> = self.pending.keys().filter(|k| k.as_str() != MANIFEST).cloned().collect();
        if self.pending.contains_key(MANIFEST) {
            writes.push(MANIFEST.to_string());
        }
        for key in writes {
            let name = self.flushed.get(&key).cloned().unwrap_or_else(|| name_of(&key));
            write(&self.folder, &name, self.pending.get(&key).map(Vec::as_slice).unwrap_or_default()).await?;
            self.pending.remove(&key);
            self.flushed.insert(key, name);
        }
        // The manifest no longer names these, so the state on disk is whole already: a
        // backfill's next run need not wait for their removal (a round of OPFS each).
        for key in std::mem::take(&mut self.removed) {
            if let Some(name) = self.flushed.remove(&key) {
                self.removing.push(self.folder.remove_entry(&name));
            }
        }
        Ok(())
    }

    /// Waits for the removals the flushes started. One that failed leaves a file no manifest
    /// names, which a later session's first save removes.
    pub fn removals(&mut self) -> impl Future<Output = ()> + use<> {
        let removing = std::mem::take(&mut self.removing);
        async move {
            for removal in removing {
                let _ = JsFuture::from(removal).await;
            }
        }
    }
}

/// Saving only writes: a flushed key's bytes are in OPFS alone, read by [`BrowserStore::restore`].
impl Store for BrowserStore {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.pending.get(key) {
            Some(bytes) => Ok(Some(bytes.clone())),
            None if self.flushed.contains_key(key) && !self.removed.contains(key) => {
                Err(Error::State { path: format!("browser storage {key}"), message: "is read only when a session is restored".into() })
            }
            None => Ok(None),
        }
    }
    fn write(&mut self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.removed.remove(key);
        self.pending.insert(key.to_string(), bytes);
        Ok(())
    }
    fn remove(&mut self, key: &str) -> Result<()> {
        self.pending.remove(key);
        if self.flushed.contains_key(key) {
            self.removed.insert(key.to_string());
        }
        Ok(())
    }
    fn list(&self) -> Result<Vec<String>> {
        let flushed = self.flushed.keys().filter(|key| !self.removed.contains(*key));
        let keys: BTreeSet<&String> = flushed.chain(self.pending.keys()).collect();
        Ok(keys.into_iter().cloned().collect())
    }
}

fn fail(what: &str, error: JsValue) -> Error {
    let message = error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"));
    Error::State { path: format!("browser storage {what}"), message }
}

async fn await_promise(promise: Promise, what: &str) -> Result<JsValue> {
    JsFuture::from(promise).await.map_err(|e| fail(what, e))
}

async fn root() -> Result<FileSystemDirectoryHandle> {
    Ok(await_promise(storage()?.get_directory(), "root").await?.unchecked_into())
}

async fn folder() -> Result<FileSystemDirectoryHandle> {
    let root = root().await?;
    let options = web_sys::FileSystemGetDirectoryOptions::new();
    options.set_create(true);
    let folder = await_promise(root.get_directory_handle_with_options(FOLDER, &options), FOLDER).await?;
    Ok(folder.unchecked_into())
}

/// The origin's storage, from the page or from the engine's worker.
fn storage() -> Result<web_sys::StorageManager> {
    let global = js_sys::global();
    if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        return Ok(window.navigator().storage());
    }
    match global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Some(worker) => Ok(worker.navigator().storage()),
        None => Err(fail("", JsValue::from_str("neither a page nor a worker"))),
    }
}

/// The names in the folder, through its async iterator of keys.
async fn file_names(folder: &FileSystemDirectoryHandle) -> Result<Vec<String>> {
    let iterator = folder.keys();
    let mut names = Vec::new();
    loop {
        let step = await_promise(iterator.next().map_err(|e| fail("list", e))?, "list").await?;
        let done = js_sys::Reflect::get(&step, &"done".into()).map_err(|e| fail("list", e))?;
        if done.as_bool().unwrap_or(true) {
            return Ok(names);
        }
        let value = js_sys::Reflect::get(&step, &"value".into()).map_err(|e| fail("list", e))?;
        if let Some(name) = value.as_string()
            && !name.ends_with(".crswap")
        {
            names.push(name);
        }
    }
}

async fn read(folder: &FileSystemDirectoryHandle, name: &str) -> Result<Vec<u8>> {
    let handle: FileSystemFileHandle = await_promise(folder.get_file_handle(name), name).await?.unchecked_into();
    let file: web_sys::File = await_promise(handle.get_file(), name).await?.unchecked_into();
    let buffer = await_promise(file.array_buffer(), name).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

async fn write(folder: &FileSystemDirectoryHandle, name: &str, bytes: &[u8]) -> Result<()> {
    let options = FileSystemGetFileOptions::new();
    options.set_create(true);
    let handle: FileSystemFileHandle =
        await_promise(folder.get_file_handle_with_options(name, &options), name).await?.unchecked_into();
    let stream: FileSystemWritableFileStream = await_promise(handle.create_writable(), name).await?.unchecked_into();
    let data = Uint8Array::from(bytes);
    await_promise(stream.write_with_buffer_source(&data).map_err(|e| fail(name, e))?, name).await?;
    await_promise(stream.close(), name).await?;
    Ok(())
}
