//! Everything that persists between invocations: tables (one Parquet file each), loaded files,
//! partition status and run history (a JSON manifest). Storage sits behind [`Store`]: a folder
//! natively, browser storage in the app.
//!
//! Saving writes new table files first and the manifest last, so an interrupted save leaves
//! the previous state readable; files no manifest names are removed afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::dbt::history::RunRecord;
use crate::error::{Error, Result};
use crate::orchestrate::actions::Action;
use crate::orchestrate::partitions::{DayFingerprints, PartitionLedger};
use crate::sources::ingest::FileStats;
use crate::sql::warehouse::{Relation, RelationName, Table, Warehouse};

const MANIFEST: &str = "manifest.json";
const FORMAT_VERSION: u32 = 1;

/// Key-value storage for state files.
pub trait Store {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces `key` whole: readers see the old bytes or the new, never a mix. The bytes are
    /// given, not lent: a table's Parquet is the largest thing a save makes, and a store that
    /// keeps it (until it is flushed) should not need a copy.
    fn write(&mut self, key: &str, bytes: Vec<u8>) -> Result<()>;
    fn remove(&mut self, key: &str) -> Result<()>;
    fn list(&self) -> Result<Vec<String>>;
}

/// A trip file as loaded: what the files view lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedFile {
    pub name: String,
    pub month: String,
    pub stats: FileStats,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    pub warehouse: Warehouse,
    pub files: Vec<LoadedFile>,
    pub partitions: PartitionLedger,
    pub fingerprints: DayFingerprints,
    pub runs: Vec<RunRecord>,
    /// Everything done to this state since it was empty, replayable.
    pub actions: Vec<Action>,
    /// What the layers above the engine keep with the state, each under its own key (the
    /// course's lesson outcomes under `lesson`); saved in the manifest beside the rest.
    pub kept: BTreeMap<String, serde_json::Value>,
    /// File each table was last saved to, so unchanged tables are not written again.
    saved: BTreeMap<RelationName, (u64, String)>,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    version: u32,
    relations: Vec<ManifestRelation>,
    files: Vec<LoadedFile>,
    partitions: PartitionLedger,
    fingerprints: DayFingerprints,
    runs: Vec<RunRecord>,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(flatten)]
    kept: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct ManifestRelation {
    schema: String,
    name: String,
    /// The Parquet file of a table, or the SQL of a view.
    file: Option<String>,
    sql: Option<String>,
}

impl State {
    pub fn load(store: &dyn Store) -> Result<State> {
        let Some(bytes) = store.read(MANIFEST)? else {
            return Ok(State::default());
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::state(MANIFEST, e))?;
        if manifest.version != FORMAT_VERSION {
            return Err(Error::state(MANIFEST, format!("format version {} is not {FORMAT_VERSION}", manifest.version)));
        }
        let mut state = State {
            files: manifest.files,
            partitions: manifest.partitions,
            fingerprints: manifest.fingerprints,
            runs: manifest.runs,
            actions: manifest.actions,
            kept: manifest.kept,
            ..State::default()
        };
        for relation in manifest.relations {
            let name = RelationName::new(&relation.schema, &relation.name);
            match (relation.file, relation.sql) {
                (Some(file), _) => {
                    let bytes = store.read(&file)?.ok_or_else(|| Error::state(&file, "missing"))?;
                    let table = read_table(&file, bytes)?;
                    state.saved.insert(name.clone(), (identity(&table), file));
                    state.warehouse.put_table(name, table);
                }
                (None, Some(sql)) => state.warehouse.put_view(name, sql),
                (None, None) => return Err(Error::state(MANIFEST, format!("{name} has neither file nor SQL"))),
            }
        }
        Ok(state)
    }

    pub fn save(&mut self, store: &mut dyn Store) -> Result<()> {
        let mut relations = Vec::new();
        let mut saved = BTreeMap::new();
        for (name, relation) in self.warehouse.relations() {
            match relation {
                Relation::Table(table) => {
                    let id = identity(table);
                    let file = match self.saved.get(name) {
                        Some((saved_id, file)) if *saved_id == id => file.clone(),
                        _ => {
                            let file = format!("tables/{}.{}.{}.parquet", name.schema, name.name, unique_suffix());
                            store.write(&file, write_table(&file, table)?)?;
                            file
                        }
                    };
                    saved.insert(name.clone(), (id, file.clone()));
                    relations.push(ManifestRelation { schema: name.schema.clone(), name: name.name.clone(), file: Some(file), sql: None });
                }
                Relation::View { sql } => relations.push(ManifestRelation {
                    schema: name.schema.clone(),
                    name: name.name.clone(),
                    file: None,
                    sql: Some(sql.clone()),
                }),
            }
        }
        let manifest = Manifest {
            version: FORMAT_VERSION,
            relations,
            files: self.files.clone(),
            partitions: self.partitions.clone(),
            fingerprints: self.fingerprints.clone(),
            runs: self.runs.clone(),
            actions: self.actions.clone(),
            kept: self.kept.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::state(MANIFEST, e))?;
        store.write(MANIFEST, json)?;
        let live: Vec<&String> = saved.values().map(|(_, f)| f).collect();
        for key in store.list()? {
            if key.starts_with("tables/") && !live.contains(&&key) {
                store.remove(&key)?;
            }
        }
        self.saved = saved;
        Ok(())
    }
}

fn identity(table: &Table) -> u64 {
    table.version
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = chrono::Utc::now().timestamp_micros();
    format!("{micros:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn write_table(file: &str, table: &Table) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, Arc::clone(&table.schema), Some(props)).map_err(|e| Error::state(file, e))?;
    for batch in table.batches.iter() {
        writer.write(batch).map_err(|e| Error::state(file, e))?;
    }
    writer.close().map_err(|e| Error::state(file, e))?;
    Ok(out)
}

fn read_table(file: &str, bytes: Vec<u8>) -> Result<Table> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).map_err(|e| Error::state(file, e))?;
    let schema = Arc::clone(builder.schema());
    let reader = builder.build().map_err(|e| Error::state(file, e))?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| Error::state(file, e))?;
    Ok(Table::new(schema, batches))
}

/// State in memory only: tests, and the page before browser storage is attached.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(pub BTreeMap<String, Vec<u8>>);

impl Store for MemoryStore {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }
    fn write(&mut self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.0.insert(key.to_string(), bytes);
        Ok(())
    }
    fn remove(&mut self, key: &str) -> Result<()> {
        self.0.remove(key);
        Ok(())
    }
    fn list(&self) -> Result<Vec<String>> {
        Ok(self.0.keys().cloned().collect())
    }
}

/// State in a folder: `manifest.json` and `tables/*.parquet`, locked for as long as the store
/// lives: two processes saving into one folder would share temporary files and remove each
/// other's tables.
#[cfg(not(target_arch = "wasm32"))]
pub struct DirStore {
    root: std::path::PathBuf,
    /// The open `lock` file, holding the folder's lock (released when it is closed).
    _lock: std::fs::File,
}

#[cfg(not(target_arch = "wasm32"))]
impl DirStore {
    /// Opens the state folder `root` (creating it), locked for writing, or shared with other
    /// readers when `write` is false. Fails at once when another process holds it.
    pub fn open(root: &std::path::Path, write: bool) -> Result<DirStore> {
        let fail = |e: std::io::Error| Error::state(root.display().to_string(), e);
        std::fs::create_dir_all(root).map_err(fail)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))
            .map_err(fail)?;
        let locked = if write { lock.try_lock() } else { lock.try_lock_shared() };
        match locked {
            Ok(()) => Ok(DirStore { root: root.to_path_buf(), _lock: lock }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::state(
                root.display().to_string(),
                "another backfill process is using this state folder; run one command at a time on it",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(fail(e)),
        }
    }
}

/// Makes a rename in `folder` survive a crash (on Unix a folder's entries are synced like files).
#[cfg(not(target_arch = "wasm32"))]
fn sync_folder(folder: &std::path::Path) -> std::io::Result<()> {
    if cfg!(unix) {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
impl Store for DirStore {
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(key);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::state(path.display().to_string(), e)),
        }
    }

    /// The bytes reach the disk before the rename publishes them, and the rename before the
    /// next file: a crash leaves the manifest naming only tables that were written whole.
    fn write(&mut self, key: &str, bytes: Vec<u8>) -> Result<()> {
        use std::io::Write;
        let path = self.root.join(key);
        let fail = |e: std::io::Error| Error::state(path.display().to_string(), e);
        let folder = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(folder).map_err(fail)?;
        let temporary = path.with_extension("partial");
        let mut file = std::fs::File::create(&temporary).map_err(fail)?;
        file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(fail)?;
        std::fs::rename(&temporary, &path).map_err(fail)?;
        sync_folder(folder).map_err(fail)
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        let path = self.root.join(key);
        std::fs::remove_file(&path).map_err(|e| Error::state(path.display().to_string(), e))
    }

    fn list(&self) -> Result<Vec<String>> {
        let tables = self.root.join("tables");
        let entries = match std::fs::read_dir(&tables) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::state(tables.display().to_string(), e)),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(|n| format!("tables/{n}")))
            .collect())
    }
}
