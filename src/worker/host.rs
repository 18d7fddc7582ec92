//! The worker's one engine and its browser storage. Requests run one at a time (the engine
//! lock); each that changes state publishes a fresh snapshot, then saves to OPFS.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use chrono::NaiveDate;
use futures::lock::Mutex;

use crate::course::builtin::{LESSON, builtin};
use crate::course::compare;
use crate::course::export::BackfillPolicy;
use crate::course::lesson;
use crate::course::share::{self, SharedSession};
use crate::dbt::history::RunRecord;
use crate::dbt::import;
use crate::error::{Error, Result};
use crate::orchestrate::actions::Action;
use crate::orchestrate::engine::{Backfill, Engine};
use crate::orchestrate::partitions::day_text;
use crate::orchestrate::state::State;
use crate::sources::sample::{FileCompression, FileSchema, SampleSpec, write_parquet};
use crate::sql::query::{cell, slice, to_csv, to_json_rows};
use crate::sql::warehouse::Table;
use crate::view::protocol::{Answer, Event, Progress, Request, Runs, TablePage};
use crate::view::snapshot::snapshot;
use crate::worker::browser_store::BrowserStore;
use crate::worker::wire::Payload;

/// The built-in sample: the same rows as `backfill gen --month 2023-03 --rows 200000 --seed 1`.
const SAMPLE_MONTH: &str = "2023-03";
const SAMPLE_ROWS: usize = 200_000;

/// What a request produced: its answer, the bytes that go with it, and a warning to show even
/// if it succeeded.
pub struct Outcome {
    pub result: Result<Answer>,
    pub payloads: Vec<Vec<u8>>,
    pub warning: Option<String>,
}

pub struct Host {
    engine: Mutex<Engine>,
    store: RefCell<Option<BrowserStore>>,
    /// Set by the page's Cancel; checked between partitions.
    cancelled: Cell<bool>,
    post: Box<dyn Fn(Event)>,
    /// A save that failed during the current request.
    save_warning: RefCell<Option<String>>,
    /// The runs the page has: a snapshot sends the ones after them.
    sent_runs: RefCell<Vec<RunRecord>>,
}

impl Host {
    pub fn new(post: Box<dyn Fn(Event)>) -> Result<Host> {
        Ok(Host {
            engine: Mutex::new(Engine::new(builtin(LESSON)?, State::default(), builtin)),
            store: RefCell::new(None),
            cancelled: Cell::new(false),
            post,
            save_warning: RefCell::new(None),
            sent_runs: RefCell::new(Vec::new()),
        })
    }

    pub fn cancel(&self) {
        self.cancelled.set(true);
    }

    /// Payloads are read once the engine is this request's (inside `change`), so requests run
    /// in the order they came, however long a file takes to read.
    pub async fn handle(&self, request: Request, mut payloads: Vec<Payload>) -> Outcome {
        let mut bytes = Vec::new();
        self.save_warning.replace(None);
        self.cancelled.set(false);
        let result = match request {
            Request::Open => self.open().await,
            Request::Start { shared } => self.start(shared).await,
            Request::CheckLink { fragment } => SharedSession::from_fragment(&fragment).and_then(|s| s.check()).map(Answer::Link),
            Request::OpenShared { fragment } => self.open_shared(&fragment).await,
            Request::Load { name, month } => {
                let file = payloads.pop();
                self.change(&format!("Loading {name}"), async |engine| {
                    let file = match &file {
                        Some(file) => file.read().await.map_err(|message| Error::Ingest { file: name.clone(), message })?,
                        None => Vec::new(),
                    };
                    engine.load_trips(&name, file, month.as_deref()).map(Answer::File)
                })
                .await
            }
            Request::Generate { month, rows } => {
                let spec = sample_spec(&month, rows);
                self.change(&format!("Generating {rows} trips for {month}"), async |engine| engine.load_sample(&spec).map(Answer::File))
                    .await
            }
            Request::Build(request) => {
                let label = if request.full_refresh { "Full refresh" } else { "Building" };
                self.change(label, async |engine| engine.build(&request).await.map(Answer::Run)).await
            }
            Request::Materialize { range, single_run } => self.materialize(&range, single_run).await,
            Request::SetModelSql { model, sql } => {
                self.change("Changing the model", async |engine| {
                    engine.change_project(Action::Model { name: model, sql }).map(|()| Answer::Done)
                })
                .await
            }
            Request::ImportProject { name, paths } => {
                self.change(&format!("Importing {name}"), async |engine| {
                    let mut files = Vec::new();
                    for (path, payload) in paths.into_iter().zip(&payloads) {
                        let bytes = payload.read().await.map_err(|message| Error::Project { file: path.clone(), message })?;
                        files.push((path, bytes));
                    }
                    let files = match files.as_slice() {
                        [(path, bytes)] if path.ends_with(".zip") => import::from_zip(path, bytes),
                        _ => import::from_files(&name, files),
                    }?;
                    engine.change_project(Action::ProjectFiles { files: files.0 }).map(|()| Answer::Done)
                })
                .await
            }
            Request::ExportProject { single_run } => {
                let engine = self.engine.lock().await;
                let start = engine.partitions_definition().map_or_else(|| "2023-03-01".to_string(), |d| day_text(d.start));
                crate::course::export::project_zip(&engine.project, &start, BackfillPolicy::of_single_run(single_run)).map(|zip| {
                    bytes.push(zip);
                    Answer::Bytes
                })
            }
            Request::Query { sql } => {
                let engine = self.engine.lock().await;
                let table = engine.query(&sql).await;
                table.map(|t| Answer::Json(serde_json::Value::Array(to_json_rows(&t).into_iter().map(serde_json::Value::Object).collect())))
            }
            Request::TablePage { table, order, offset, limit } => {
                let engine = self.engine.lock().await;
                table_page(&engine, &table, order, offset, limit).await.map(Answer::Page)
            }
            // The query runs once, whole: a limit wrapped around it could lose its order.
            Request::Show { sql, offset, limit } => {
                let engine = self.engine.lock().await;
                engine.query_inline(&sql).await.map(|rows| page(&slice(&rows, offset, limit), rows.num_rows())).map(Answer::Page)
            }
            Request::Download { table, csv } => {
                let engine = self.engine.lock().await;
                let all = engine.query(&format!("select * from {table}")).await;
                let file = all.and_then(|all| {
                    if csv {
                        Ok(to_csv(&all).into_bytes())
                    } else {
                        write_parquet(&all.batches, FileCompression::Zstd)
                    }
                });
                file.map(|file| {
                    bytes.push(file);
                    Answer::Bytes
                })
            }
            Request::Partitions => Ok(Answer::Json(self.partitions_json().await)),
            Request::Runs => {
                let engine = self.engine.lock().await;
                Ok(Answer::Json(serde_json::to_value(&engine.state.runs).unwrap_or_default()))
            }
            Request::LessonStep { number } => {
                self.change(&format!("Lesson step {number}"), async |engine| {
                    lesson::run_step(engine, number).await.map(|o| Answer::Step(Box::new(o)))
                })
                .await
            }
            Request::Compare { lesson_story } => self.compare(lesson_story).await,
            Request::ShareFragment { mut view } => {
                let engine = self.engine.lock().await;
                view.lesson_steps = lesson::outcomes(&engine.state).map_or(0, |o| o.len());
                SharedSession::new(engine.state.actions.clone(), view).to_fragment().map(Answer::Text)
            }
            Request::Reset => self.reset().await,
        };
        // The reply follows what the request saved, stale files' removal included.
        let removals = self.store.borrow_mut().as_mut().map(BrowserStore::removals);
        if let Some(removals) = removals {
            removals.await;
        }
        self.post(Event::Progress(None));
        Outcome { result, payloads: bytes, warning: self.save_warning.take() }
    }

    async fn open(&self) -> Result<Answer> {
        let warning = self.attach_store().await;
        let saved = self.store.borrow().as_ref().is_some_and(BrowserStore::has_state);
        Ok(Answer::Opened { saved, warning })
    }

    /// Opens browser storage; without it (a private window) everything works, nothing persists
    /// (the warning says so).
    async fn attach_store(&self) -> Option<String> {
        let (store, warning) = match BrowserStore::open().await {
            Ok(store) => (Some(store), None),
            Err(e) => (None, Some(not_saved(&e))),
        };
        *self.store.borrow_mut() = store;
        warning
    }

    /// A saved session that cannot be opened fails the start, but the store stays attached:
    /// the page shows why, and Reset clears it.
    async fn start(&self, shared: Option<String>) -> Result<Answer> {
        if let Some(fragment) = shared {
            return self.open_shared(&fragment).await;
        }
        let mut engine = self.engine.lock().await;
        // Taken out while it reads, so no RefCell borrow lives across an await.
        let store = self.store.borrow_mut().take();
        let restored = match &store {
            Some(store) => store.restore().await,
            None => Ok(None),
        };
        *self.store.borrow_mut() = store;
        match restored? {
            Some(state) => {
                let base = builtin(LESSON)?;
                let mut restored = Engine::new(base.clone(), state, builtin);
                restored.restore_project(base)?;
                *engine = restored;
                self.publish(&engine).await;
            }
            None => {
                self.post(Event::Progress(Some(Progress::uncancellable("Generating the sample month", 0, 3))));
                engine.load_sample(&sample_spec(SAMPLE_MONTH, SAMPLE_ROWS))?;
                self.post(Event::Progress(Some(Progress::uncancellable("Building the lesson", 1, 3))));
                engine.build(&crate::dbt::request::BuildRequest::default()).await?;
                // The chart first: saving writes every table as Parquet, which takes a while.
                self.publish(&engine).await;
                self.save(&mut engine).await?;
            }
        }
        Ok(Answer::Started { warning: None, view: None })
    }

    /// Replays a shared session in an engine of its own; only if the whole link succeeded (and
    /// was not cancelled meanwhile) does it replace this session, which is then shown and saved.
    /// The answer names the files the link could not carry.
    async fn open_shared(&self, fragment: &str) -> Result<Answer> {
        let mut engine = self.engine.lock().await;
        self.progress("Opening the shared session");
        let shared = SharedSession::from_fragment(fragment)?;
        let (opened, notes) = share::open(&shared).await?;
        next_tick().await;
        if self.cancelled.get() {
            return Err(Error::Cancelled("the shared session was not opened; this one is as it was".into()));
        }
        *engine = opened;
        self.publish(&engine).await;
        self.save_or_warn(&mut engine).await;
        let warning =
            (!notes.is_empty()).then(|| format!("Opened the shared session without its files from disk: {}", notes.join("; ")));
        Ok(Answer::Started { warning, view: Some(shared.view) })
    }

    /// A backfill's runs (see [`Engine::plan_backfill`]) with progress, cancellable between
    /// runs; a failed run does not stop the others.
    async fn materialize(&self, selection: &str, single_run: bool) -> Result<Answer> {
        let mut engine = self.engine.lock().await;
        let plan = match engine.plan_backfill(selection, single_run) {
            Ok(plan) => plan,
            Err(e) => return self.finish(&mut engine, Err(e)).await,
        };
        let total = plan.runs.len();
        let mut backfill = Backfill::new(total);
        for (index, &(first, last)) in plan.runs.iter().enumerate() {
            // Lets a Cancel sent meanwhile arrive.
            next_tick().await;
            if self.cancelled.get() {
                self.post(Event::Running { days: BTreeSet::new() });
                let kept = format!("the {index} of {total} partition runs done before it are kept");
                return self.finish(&mut engine, Err(Error::Cancelled(kept))).await;
            }
            self.post(Event::Running { days: first.iter_days().take_while(|d| *d <= last).collect() });
            self.post(Event::Progress(Some(Progress::step(format!("Materializing {}", range_label(first, last)), index, total))));
            let outcome = engine.materialize_run(&plan, (first, last)).await;
            backfill.add((first, last), outcome);
            // Each run's outcome is kept even if a later one is cancelled; the last one's is
            // published and saved once, below.
            if index + 1 < total {
                self.publish(&engine).await;
                self.save_or_warn(&mut engine).await;
            }
        }
        self.post(Event::Running { days: BTreeSet::new() });
        self.finish(&mut engine, backfill.into_result().map(Answer::Runs)).await
    }

    /// The lesson's data story, or this session's arrivals, through every strategy; the
    /// session's own tables are not touched.
    async fn compare(&self, lesson_story: bool) -> Result<Answer> {
        let arrivals =
            if lesson_story { lesson::data_story() } else { crate::orchestrate::actions::arrivals(&self.engine.lock().await.state.actions) };
        let comparison = compare::compare(&arrivals, async |done, all| {
            self.post(Event::Progress(Some(Progress::step(format!("Comparing strategies: arrival {} of {all}", done + 1), done, all))));
        })
        .await?;
        Ok(Answer::Comparison(Box::new(comparison)))
    }

    async fn partitions_json(&self) -> serde_json::Value {
        let engine = self.engine.lock().await;
        let cells: Vec<serde_json::Value> = engine
            .partitions()
            .into_iter()
            .map(|p| {
                let mut value = serde_json::to_value(&p.status).unwrap_or_default();
                if let Some(object) = value.as_object_mut() {
                    object.insert("partition".into(), day_text(p.day).into());
                }
                value
            })
            .collect();
        serde_json::Value::Array(cells)
    }

    /// Forgets every file, table, partition and run, and whatever browser storage holds (even a
    /// saved session that could not be opened), then starts over with the sample.
    async fn reset(&self) -> Result<Answer> {
        let warning = {
            let mut engine = self.engine.lock().await;
            engine.state = State::default();
            engine.project = builtin(LESSON)?;
            self.store.borrow_mut().take();
            match BrowserStore::wipe().await {
                Ok(()) => self.attach_store().await,
                Err(e) => Some(not_saved(&e)),
            }
        };
        self.start(None).await?;
        Ok(Answer::Started { warning, view: None })
    }

    /// Runs an operation that changes the engine. A Cancel sent while it ran (seen once it
    /// yields) puts the engine back as it was, with nothing published or saved; otherwise its
    /// outcome is published and saved like any other.
    async fn change(&self, label: &str, operation: impl AsyncFnOnce(&mut Engine) -> Result<Answer>) -> Result<Answer> {
        let mut engine = self.engine.lock().await;
        self.progress(label);
        let before = (engine.project.clone(), engine.state.clone());
        let result = operation(&mut *engine).await;
        next_tick().await;
        if self.cancelled.get() {
            (engine.project, engine.state) = before;
            return Err(Error::Cancelled("nothing was changed".into()));
        }
        self.finish(&mut engine, result).await
    }

    /// Publishes, then saves (whether the operation succeeded or a run failed and was
    /// recorded); a failed save becomes the reply's warning.
    async fn finish(&self, engine: &mut Engine, result: Result<Answer>) -> Result<Answer> {
        self.publish(engine).await;
        self.save_or_warn(engine).await;
        result
    }

    async fn save_or_warn(&self, engine: &mut Engine) {
        if let Err(e) = self.save(engine).await {
            self.save_warning.replace(Some(format!("{e}: the page shows the change, but it is not saved in this browser")));
        }
    }

    async fn save(&self, engine: &mut Engine) -> Result<()> {
        // The store is taken out while flushing so no RefCell borrow lives across an await.
        let Some(mut store) = self.store.borrow_mut().take() else { return Ok(()) };
        self.post(Event::Progress(Some(Progress::uncancellable("Saving in this browser", 0, 1))));
        let result = match engine.state.save(&mut store) {
            Ok(()) => store.flush().await,
            Err(e) => Err(e),
        };
        *self.store.borrow_mut() = Some(store);
        result
    }

    async fn publish(&self, engine: &Engine) {
        let mut snapshot = snapshot(engine).await;
        let all = std::mem::take(&mut snapshot.runs.runs);
        snapshot.runs = Runs::since(&self.sent_runs.borrow(), &all);
        self.sent_runs.replace(all);
        self.post(Event::Snapshot(Box::new(snapshot)));
    }

    fn progress(&self, label: &str) {
        self.post(Event::Progress(Some(Progress::step(label, 0, 1))));
    }

    fn post(&self, event: Event) {
        (self.post)(event);
    }
}

async fn table_page(engine: &Engine, table: &str, order: Option<(String, bool)>, offset: usize, limit: usize) -> Result<TablePage> {
    let order_by = order
        .map(|(c, desc)| format!(" order by \"{}\" {}", c.replace('"', "\"\""), if desc { "desc" } else { "asc" }))
        .unwrap_or_default();
    let rows = engine.query(&format!("select * from {table}{order_by} limit {limit} offset {offset}")).await?;
    let total = engine.query(&format!("select count(*) from {table}")).await?;
    let total = total.batches.first().and_then(|b| cell(b, 0, 0)).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(page(&rows, total))
}

/// Rows as text, with the count of the rows they are a page of.
fn page(rows: &Table, total: usize) -> TablePage {
    let columns: Vec<String> = rows.schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut out = Vec::new();
    for batch in rows.batches.iter() {
        for row in 0..batch.num_rows() {
            out.push((0..columns.len()).map(|c| cell(batch, c, row).unwrap_or_else(|| "NULL".into())).collect());
        }
    }
    TablePage { columns, rows: out, total }
}

fn not_saved(error: &Error) -> String {
    format!("{error}; this session will not be saved")
}

/// A month as `backfill gen` makes it by default (seed 1, the 2023 layout).
fn sample_spec(month: &str, rows: usize) -> SampleSpec {
    SampleSpec { month: month.into(), rows, seed: 1, schema: FileSchema::Y2023 }
}

fn range_label(first: NaiveDate, last: NaiveDate) -> String {
    if first == last { day_text(first) } else { format!("{} to {}", day_text(first), day_text(last)) }
}

/// Yields to the worker's event loop, so messages sent meanwhile (Cancel) are handled.
async fn next_tick() {
    use wasm_bindgen::JsCast;
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Ok(scope) = js_sys::global().dyn_into::<web_sys::WorkerGlobalScope>() {
            let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
