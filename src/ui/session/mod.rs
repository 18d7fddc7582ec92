//! The page's side of the engine: the engine runs in a Web Worker (`crate::worker`); every
//! operation (from a view or the page API) is a [`Request`] to it, answered by a Promise-like
//! future. The worker's events feed the signals the views read: the snapshot's parts, progress, the
//! days being materialized. A worker that dies (a panic, out of memory) or does not stop when
//! cancelled is replaced by a new one, started on the last saved state, and the page says so.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use chrono::NaiveDate;
use futures::channel::oneshot;
use js_sys::Uint8Array;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::Worker;

use crate::course::compare::Comparison;
use crate::course::lesson::StepOutcome;
use crate::course::share::View;
use crate::dbt::history::RunRecord;
use crate::dbt::request::BuildRequest;
use crate::error::{Error, Result};
use crate::orchestrate::state::LoadedFile;
use crate::view::protocol::{Answer, Message, Progress, Request, TablePage};
use crate::worker::wire::Payload;

mod opening;
mod published;
mod worker_link;

pub use published::Published;

use worker_link::spawn_worker;

/// How long a cancelled operation may take to stop at a checkpoint before the worker is
/// stopped outright.
const CANCEL_GRACE_MS: i32 = 2_000;

type Reply = (Result<Answer>, Vec<Payload>);

pub struct Session {
    worker: RefCell<Option<Worker>>,
    /// The worker sends `Ready` once it listens; messages before that would be lost.
    ready: Cell<bool>,
    queued: RefCell<Vec<(String, Vec<Payload>)>>,
    pending: RefCell<BTreeMap<u64, oneshot::Sender<Reply>>>,
    next_id: Cell<u64>,
    /// What the worker last published, a signal per part.
    pub published: Published,
    pub progress: RwSignal<Option<Progress>>,
    pub error: RwSignal<Option<String>>,
    /// What to paste into a bug report when the engine crashed (shown with the error).
    pub crash_details: RwSignal<Option<String>>,
    /// Days being materialized right now (shown as `running`).
    pub running: RwSignal<BTreeSet<NaiveDate>>,
    /// What the page shows that a share link keeps (lesson step, time-travel position).
    pub view: RwSignal<View>,
    /// Bumped by every cancel, so a late grace timer knows whether it still applies.
    cancels: Cell<u64>,
}

pub type Shared = Rc<Session>;

impl Session {
    pub fn new() -> Shared {
        let session = Rc::new(Session {
            worker: RefCell::new(None),
            ready: Cell::new(false),
            queued: RefCell::new(Vec::new()),
            pending: RefCell::new(BTreeMap::new()),
            next_id: Cell::new(1),
            published: Published::new(),
            progress: RwSignal::new(None),
            error: RwSignal::new(None),
            crash_details: RwSignal::new(None),
            running: RwSignal::new(BTreeSet::new()),
            view: RwSignal::new(super::saved_view::load()),
            cancels: Cell::new(0),
        });
        spawn_worker(&session);
        session
    }

    /// Runs lesson step `number` (1 starts over).
    pub async fn lesson_step(self: &Rc<Self>, number: usize) -> Result<StepOutcome> {
        self.view.update(|v| v.run = None);
        match self.ask(Request::LessonStep { number }).await? {
            Answer::Step(outcome) => Ok(*outcome),
            _ => Err(unexpected()),
        }
    }

    /// Runs the lesson's data story, or this session's arrivals, through every strategy. The
    /// session's own tables are not touched.
    pub async fn compare(self: &Rc<Self>, lesson_story: bool) -> Result<Comparison> {
        match self.ask(Request::Compare { lesson_story }).await? {
            Answer::Comparison(comparison) => Ok(*comparison),
            _ => Err(unexpected()),
        }
    }

    /// The page's address with this session in its fragment.
    pub async fn share_link(self: &Rc<Self>) -> Result<String> {
        let view = self.view.get_untracked();
        let Answer::Text(fragment) = self.ask(Request::ShareFragment { view }).await? else { return Err(unexpected()) };
        let base = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .map(|href| href.split('#').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        Ok(format!("{base}{fragment}"))
    }

    /// Ingests one trip file (the worker reads it: the page never holds its bytes). A bad file
    /// changes nothing.
    pub async fn load(self: &Rc<Self>, name: &str, file: Payload, month: Option<&str>) -> Result<LoadedFile> {
        let request = Request::Load { name: name.to_string(), month: month.map(str::to_string) };
        match self.ask_with(request, vec![file]).await?.0 {
            Answer::File(file) => Ok(file),
            _ => Err(unexpected()),
        }
    }

    /// Generates a sample month in the engine and ingests it.
    pub async fn generate(self: &Rc<Self>, month: &str, rows: usize) -> Result<LoadedFile> {
        match self.ask(Request::Generate { month: month.to_string(), rows }).await? {
            Answer::File(file) => Ok(file),
            _ => Err(unexpected()),
        }
    }

    pub async fn build(self: &Rc<Self>, request: &BuildRequest) -> Result<RunRecord> {
        match self.ask(Request::Build(request.clone())).await? {
            Answer::Run(record) => Ok(record),
            _ => Err(unexpected()),
        }
    }

    /// Materializes a range: one run per day (with progress, cancellable between days), or
    /// one run over the whole range.
    pub async fn materialize(self: &Rc<Self>, range: &str, single_run: bool) -> Result<Vec<RunRecord>> {
        match self.ask(Request::Materialize { range: range.to_string(), single_run }).await? {
            Answer::Runs(records) => Ok(records),
            _ => Err(unexpected()),
        }
    }

    /// Replaces a model's SQL (the project is re-read, so its YAML config still applies).
    pub async fn set_model_sql(self: &Rc<Self>, model: &str, sql: &str) -> Result<()> {
        self.ask(Request::SetModelSql { model: model.to_string(), sql: sql.to_string() }).await.map(|_| ())
    }

    /// Replaces the project with a dropped one: a zip archive, or a folder's files by path.
    /// A file that is not a dbt project, or a project that does not parse, changes nothing.
    pub async fn import_project(self: &Rc<Self>, name: &str, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        let (paths, payloads): (Vec<String>, Vec<Payload>) =
            files.into_iter().map(|(path, bytes)| (path, Payload::Bytes(Uint8Array::from(bytes.as_slice())))).unzip();
        self.ask_with(Request::ImportProject { name: name.to_string(), paths }, payloads).await.map(|_| ())
    }

    /// The project as a dbt project zip, its Dagster partitions starting where the page's do.
    pub async fn export_project(self: &Rc<Self>) -> Result<Uint8Array> {
        let single_run = self.view.with_untracked(|v| v.single_run);
        self.bytes(Request::ExportProject { single_run }).await
    }

    /// A whole table as CSV or Parquet bytes.
    pub async fn download(self: &Rc<Self>, table: &str, csv: bool) -> Result<Uint8Array> {
        self.bytes(Request::Download { table: table.to_string(), csv }).await
    }

    /// Rows as JSON objects. A failed query is shown on the page too.
    pub async fn query(self: &Rc<Self>, sql: &str) -> Result<serde_json::Value> {
        let result = self.call(Request::Query { sql: sql.to_string() }, Vec::new()).await;
        match result {
            Ok((Answer::Json(rows), _)) => Ok(rows),
            Ok(_) => Err(unexpected()),
            Err(e) => {
                self.error.set(Some(e.to_string()));
                self.crash_details.set(None);
                Err(e)
            }
        }
    }

    /// One page of a scratchpad query's rows.
    pub async fn show(self: &Rc<Self>, sql: &str, offset: usize, limit: usize) -> Result<TablePage> {
        match self.call(Request::Show { sql: sql.to_string(), offset, limit }, Vec::new()).await?.0 {
            Answer::Page(page) => Ok(page),
            _ => Err(unexpected()),
        }
    }

    pub async fn table_page(self: &Rc<Self>, table: &str, order: Option<(String, bool)>, offset: usize, limit: usize) -> Result<TablePage> {
        match self.call(Request::TablePage { table: table.to_string(), order, offset, limit }, Vec::new()).await?.0 {
            Answer::Page(page) => Ok(page),
            _ => Err(unexpected()),
        }
    }

    pub async fn partitions_json(self: &Rc<Self>) -> Result<serde_json::Value> {
        self.json(Request::Partitions).await
    }

    pub async fn runs_json(self: &Rc<Self>) -> Result<serde_json::Value> {
        self.json(Request::Runs).await
    }

    /// Forgets every file, table, partition and run, then starts over with the sample.
    pub async fn reset(self: &Rc<Self>) {
        self.view.set(View::default());
        let result = self.ask(Request::Reset).await;
        if let Ok(Answer::Started { warning, .. }) = result {
            self.error.set(warning);
        }
    }

    /// Asks the running operation to stop at its next checkpoint (between partitions); one
    /// that has not stopped after a grace period is stopped with its worker, which restarts
    /// on the last saved state.
    pub fn cancel(self: &Rc<Self>) {
        if self.pending.borrow().is_empty() || !self.cancellable() {
            return;
        }
        self.send(&Message::Cancel, Vec::new());
        let cancel = self.cancels.get() + 1;
        self.cancels.set(cancel);
        let waiting: Vec<u64> = self.pending.borrow().keys().copied().collect();
        let session = Rc::downgrade(self);
        let check = Closure::once_into_js(move || {
            let Some(session) = session.upgrade() else { return };
            let still_running = waiting.iter().any(|id| session.pending.borrow().contains_key(id));
            // A save under way is not interrupted: the outcome is shown already, and a worker
            // stopped after writing the manifest would come back with what was cancelled.
            if still_running && session.cancels.get() == cancel && session.cancellable() {
                session.restart("cancelled: the operation was stopped".to_string(), false);
            }
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(check.unchecked_ref(), CANCEL_GRACE_MS);
        }
    }

    /// Whether the operation under way may still be cancelled (not once it is being saved).
    pub fn cancellable(&self) -> bool {
        self.progress.with_untracked(|p| p.as_ref().is_some_and(|p| p.cancellable))
    }

    async fn json(self: &Rc<Self>, request: Request) -> Result<serde_json::Value> {
        match self.call(request, Vec::new()).await?.0 {
            Answer::Json(value) => Ok(value),
            _ => Err(unexpected()),
        }
    }

    async fn bytes(self: &Rc<Self>, request: Request) -> Result<Uint8Array> {
        match self.ask_with(request, Vec::new()).await? {
            (Answer::Bytes, mut payloads) => match payloads.pop() {
                Some(Payload::Bytes(bytes)) => Ok(bytes),
                _ => Err(unexpected()),
            },
            _ => Err(unexpected()),
        }
    }

    /// A request whose outcome the page reports (the error line, or clears it).
    async fn ask(self: &Rc<Self>, request: Request) -> Result<Answer> {
        self.ask_with(request, Vec::new()).await.map(|(answer, _)| answer)
    }

    async fn ask_with(self: &Rc<Self>, request: Request, payloads: Vec<Payload>) -> Result<(Answer, Vec<Payload>)> {
        let result = self.call(request, payloads).await;
        self.report(result)
    }

    fn report<T>(&self, result: Result<T>) -> Result<T> {
        self.progress.set(None);
        self.crash_details.set(None);
        match &result {
            Ok(_) => self.error.set(None),
            Err(e) => self.error.set(Some(e.to_string())),
        }
        result
    }
}

fn unexpected() -> Error {
    Error::Stopped("the engine answered another request".into())
}

