//! What each fuzz target does with its input: hands the bytes a stranger controls to the public
//! functions the page and the CLI call with them, on an engine whose state is in memory. An
//! `Err` is the right answer to bad input; a panic, a hang or a memory blowup is a finding, and
//! so is a broken promise checked here (a saved session reopens; a project holds only project
//! files). `fuzz_targets/*.rs` give these functions to libFuzzer; `tests/fuzz_regressions.rs`
//! replays the corpus and the saved findings through them in a plain `cargo test`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use backfill::{LESSON, builtin};
use backfill::share::{self, SharedSession};
use backfill::{export, lesson};
use backfill::import;
use backfill::{Project, ProjectFiles};
use backfill::Dag;
use backfill::template::{self, CompileContext};
use backfill::Action;
use backfill::Engine;
use backfill::{parse_range, window_vars};
use backfill::{MemoryStore, State};
use backfill::highlight;
use backfill::snapshot;

/// libFuzzer sees the process's resident memory once a second and blames whichever input runs
/// then, which may not be the one that asked for it. Counting every live byte here stops the
/// input that asks for too much, as it asks: an abort, which libFuzzer reports with that input
/// and which no `catch_unwind` in Backfill can mistake for a file's error.
struct Bounded;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Below libFuzzer's `-rss_limit_mb=2048`, so the input that crosses it is the one caught.
const LIVE_LIMIT: usize = 1536 << 20;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

impl Bounded {
    fn count(grown: usize) {
        if LIVE_BYTES.fetch_add(grown, Ordering::Relaxed).saturating_add(grown) > LIVE_LIMIT {
            std::process::abort();
        }
    }
}

// SAFETY: every call goes to the system allocator with the caller's own arguments.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match new_size.checked_sub(layout.size()) {
            Some(grown) => Self::count(grown),
            None => {
                LIVE_BYTES.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A dropped trip file, named as the TLC names March 2023's.
pub fn trip_parquet(data: &[u8]) {
    load_trip_file("yellow_tripdata_2023-03.parquet", data);
}

/// A dropped CSV, as a trip file and as a zone table.
pub fn trip_csv(data: &[u8]) {
    load_trip_file("yellow_tripdata_2023-03.csv", data);
    let _ = lesson_engine().load_zones("taxi_zones.csv", data);
}

/// The lesson's `daily_metrics` replaced by the input, compiled as the editor compiles it as
/// one types: as a full refresh, and incrementally for a partition.
pub fn template(data: &[u8]) {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let _ = highlight::pieces(sql);
    let mut engine = lesson_engine();
    if engine.change_project(Action::Model { name: lesson::MODEL.into(), sql: sql.into() }).is_err() {
        return;
    }
    let project = &engine.project;
    let full = CompileContext { vars: project.vars.clone(), ..CompileContext::default() };
    let mut incremental = CompileContext { is_incremental: true, ..full.clone() };
    let (first, last) = parse_range("2023-03-04").unwrap_or_else(|e| panic!("a day: {e}"));
    incremental.vars.extend(window_vars(first, last));
    for ctx in [full, incremental] {
        if let Ok(compiled) = template::compile(project, lesson::MODEL, &ctx) {
            let _ = highlight::pieces(&compiled.sql);
        }
    }
}

/// A dropped project folder, written as `head` prints several files: each file starts at a
/// line `==> path <==`.
pub fn project(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let files = files_of(text).into_iter().map(|(path, text)| (path, text.into_bytes())).collect();
    if let Ok(files) = import::from_files("dropped folder", files) {
        use_project(files);
    }
}

/// A dropped project zip.
pub fn zip_import(data: &[u8]) {
    if let Ok(files) = import::from_zip("project.zip", data) {
        use_project(files);
    }
}

/// A share link's JSON. Read twice: as the address bar's fragment itself, and deflated and
/// encoded as links are, then opened as the page opens one: replayed, shown, saved, and the
/// saved session reopened as after a reload.
pub fn share_link(data: &[u8]) {
    let _ = SharedSession::from_fragment(&String::from_utf8_lossy(data));
    let Ok(session) = serde_json::from_slice::<SharedSession>(data) else { return };
    let Ok(fragment) = session.to_fragment() else { return };
    let Ok(shared) = SharedSession::from_fragment(&fragment) else { return };
    RUNTIME.block_on(async {
        let Ok((mut engine, _notes)) = share::open(&shared).await else { return };
        holds_only_project_files(&engine.project);
        let _ = snapshot(&engine).await;
        let mut store = MemoryStore::default();
        if engine.state.save(&mut store).is_err() {
            return;
        }
        let state = State::load(&store).unwrap_or_else(|e| panic!("a saved session must reopen: {e}"));
        let mut reopened = Engine::new(lesson_project(), state, builtin);
        reopened
            .restore_project(lesson_project())
            .unwrap_or_else(|e| panic!("a saved session's project must reopen: {e}"));
        let _ = snapshot(&reopened).await;
    });
}

/// DataFusion spreads a query over the machine's cores as tokio tasks natively; one thread
/// runs them all, so an input behaves the same on every run.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("a tokio runtime: {e}"))
});

fn lesson_project() -> Project {
    builtin(LESSON).unwrap_or_else(|e| panic!("the built-in lesson: {e}"))
}

fn lesson_engine() -> Engine {
    Engine::new(lesson_project(), State::default(), builtin)
}

fn load_trip_file(name: &str, data: &[u8]) {
    let mut engine = lesson_engine();
    if engine.load_trips(name, data.to_vec(), None).is_ok() {
        let _ = engine.partitions();
    }
}

/// What the page does with an imported project: it becomes the engine's, its lineage is drawn
/// (every model compiled), and it can be exported.
fn use_project(files: ProjectFiles) {
    let mut engine = lesson_engine();
    if engine.change_project(Action::ProjectFiles { files: files.0 }).is_err() {
        return;
    }
    holds_only_project_files(&engine.project);
    let ctx = CompileContext { vars: engine.project.vars.clone(), ..CompileContext::default() };
    let _ = Dag::of(&engine.project, &ctx);
    let _ = export::project_zip(&engine.project, "2023-03-01", export::BackfillPolicy::SingleRun);
}

/// However files arrive, a project keeps only the files a dbt project reads, inside its folder
/// (no `..`, no `\`, a separator to Windows tools): an export writes each one into a zip.
fn holds_only_project_files(project: &Project) {
    for path in project.files.0.keys() {
        assert!(
            ProjectFiles::wants(path) && !path.contains('\\'),
            "the project holds {path:?}, which is not a project file inside its folder"
        );
    }
}

fn files_of(text: &str) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.trim_end().strip_prefix("==> ").and_then(|l| l.strip_suffix(" <==")) {
            files.extend(current.replace((path.to_string(), String::new())));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    files.extend(current);
    files
}
