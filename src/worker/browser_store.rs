//! State in the browser: the Origin Private File System (OPFS). [`State`](crate::orchestrate::state::State)
//! saves through the synchronous [`Store`] interface into memory; [`BrowserStore::flush`] then
//! writes what changed to OPFS. Table files are immutable (a new name per version), so a flush
//! writes new tables, then the manifest, then removes tables no manifest names — the same order
//! as the folder store, so an interrupted flush leaves the previous state readable. Keys are
//! stored under names from [`store_names`](crate::orchestrate::store_names), one name per key.

use std::collections::{BTreeMap, BTreeSet};

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetFileOptions, FileSystemRemoveOptions, FileSystemWritableFileStream,
};

use crate::error::{Error, Result};
use crate::orchestrate::state::{MemoryStore, Store};
use crate::orchestrate::store_names::{key_of, name_of};

const FOLDER: &str = "backfill-state";
const MANIFEST: &str = "manifest.json";

pub struct BrowserStore {
    memory: MemoryStore,
    /// Keys in OPFS after the last flush, with the name each is stored under (an older
    /// session's names differ from today's).
    flushed: BTreeMap<String, String>,
}

impl BrowserStore {
    /// Reads everything the last session flushed (nothing on a first visit). Files under
    /// names Backfill does not write are left alone.
    pub async fn open() -> Result<BrowserStore> {
        let folder = folder().await?;
        let mut memory = MemoryStore::default();
        let mut flushed = BTreeMap::new();
        for name in file_names(&folder).await? {
            let Some(key) = key_of(&name) else { continue };
            let bytes = read(&folder, &name).await?;
            memory.0.insert(key.clone(), bytes);
            flushed.insert(key, name);
        }
        Ok(BrowserStore { memory, flushed })
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
        self.memory.0.contains_key(MANIFEST)
    }

    /// Writes new keys and the manifest, then removes keys that are gone.
    pub async fn flush(&mut self) -> Result<()> {
        let folder = folder().await?;
        let current: BTreeSet<String> = self.memory.0.keys().cloned().collect();
        let mut writes: Vec<String> =
            current.iter().filter(|k| !self.flushed.contains_key(*k) && k.as_str() != MANIFEST).cloned().collect();
        if current.contains(MANIFEST) {
            writes.push(MANIFEST.to_string());
        }
        for key in writes {
            let bytes = self.memory.0.get(&key).map(Vec::as_slice).unwrap_or_default();
            let name = self.flushed.get(&key).cloned().unwrap_or_else(|| name_of(&key));
            write(&folder, &name, bytes).await?;
            self.flushed.insert(key, name);
        }
        let gone: Vec<(String, String)> =
            self.flushed.iter().filter(|(key, _)| !current.contains(*key)).map(|(k, n)| (k.clone(), n.clone())).collect();
        for (key, name) in gone {
            await_promise(folder.remove_entry(&name), &name).await?;
            self.flushed.remove(&key);
        }
        Ok(())
    }
}

impl Store for BrowserStore {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.memory.read(key)
    }
    fn write(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        self.memory.write(key, bytes)
    }
    fn remove(&mut self, key: &str) -> Result<()> {
        self.memory.remove(key)
    }
    fn list(&self) -> Result<Vec<String>> {
        self.memory.list()
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
