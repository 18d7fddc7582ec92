//! The page's side of the engine: the engine runs in a Web Worker (`crate::worker`); every
//! operation (from a view or the page API) is a [`Request`] to it, answered by a Promise-like
//! future. The worker's events feed the signals the views read: the snapshot, progress, the
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
use web_sys::{MessageEvent, Worker};

use crate::course::compare::Comparison;
use crate::course::lesson::StepOutcome;
use crate::course::share::{self, View};
use crate::dbt::history::RunRecord;
use crate::dbt::project::Project;
use crate::dbt::request::BuildRequest;
use crate::error::{Error, Result};
use crate::orchestrate::state::LoadedFile;
use crate::view::protocol::{Answer, Event, Message, Progress, Request, Snapshot, TablePage};
use crate::worker::wire;

/// The worker script (`worker.js`, beside `index.html`): it loads the engine's wasm.
const WORKER_SCRIPT: &str = "./worker.js";
/// How long a cancelled operation may take to stop at a checkpoint before the worker is
/// stopped outright.
const CANCEL_GRACE_MS: i32 = 2_000;

type Reply = (Result<Answer>, Vec<Uint8Array>);

pub struct Session {
    worker: RefCell<Option<Worker>>,
    /// The worker sends `Ready` once it listens; messages before that would be lost.
    ready: Cell<bool>,
    queued: RefCell<Vec<(String, Vec<Uint8Array>)>>,
    pending: RefCell<BTreeMap<u64, oneshot::Sender<Reply>>>,
    next_id: Cell<u64>,
    pub snapshot: RwSignal<Snapshot>,
    /// The snapshot's project, parsed for the editor and lineage.
    pub project: RwSignal<Option<Project>>,
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
            snapshot: RwSignal::new(Snapshot::default()),
            project: RwSignal::new(None),
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

    /// Opens the share link in the address (once checked, and asked about), or restores the
    /// saved session, or on a first visit ingests the sample month and builds the lesson. A
    /// link that fails opens the saved session (or the sample) instead, and the page says why.
    pub async fn start(self: &Rc<Self>) {
        let message = self.start_inner().await;
        self.progress.set(None);
        self.error.set(message);
    }

    /// What the page says once started: a warning, or why something could not be opened.
    async fn start_inner(self: &Rc<Self>) -> Option<String> {
        let (saved, warning) = match self.call(Request::Open, Vec::new()).await {
            Ok((Answer::Opened { saved, warning }, _)) => (saved, warning),
            Ok(_) => return Some(unexpected().to_string()),
            Err(e) => return Some(e.to_string()),
        };
        let (shared, mut refused) = match self.link_to_open(saved).await {
            Ok(shared) => (shared, None),
            Err(message) => (None, Some(message)),
        };
        if let Some(fragment) = shared {
            match self.call(Request::Start { shared: Some(fragment) }, Vec::new()).await {
                Ok((Answer::Started { warning, view }, _)) => {
                    self.view.set(view.unwrap_or_default());
                    return warning;
                }
                Ok(_) => return Some(unexpected().to_string()),
                // The worker stopped; it restarts on the saved session by itself.
                Err(e @ Error::Stopped(_)) => return Some(link_not_opened(&e)),
                Err(e) => refused = Some(link_not_opened(&e)),
            }
        }
        match self.call(Request::Start { shared: None }, Vec::new()).await {
            Ok((Answer::Started { warning: started, .. }, _)) => refused.or(started).or(warning),
            Ok(_) => Some(unexpected().to_string()),
            Err(e) if saved => {
                Some(format!("The session saved in this browser cannot be opened ({e}). Reset clears it and starts over."))
            }
            Err(e) => Some(e.to_string()),
        }
    }

    /// Opens a share link pasted into the address of an open page (a fragment change does not
    /// reload it), after asking: it replaces this session. A link that fails changes nothing.
    pub async fn open_link_in_location(self: &Rc<Self>) {
        let fragment = match self.link_to_open(true).await {
            Ok(Some(fragment)) => fragment,
            Ok(None) => return,
            Err(message) => return self.error.set(Some(message)),
        };
        let result = self.call(Request::OpenShared { fragment }, Vec::new()).await;
        self.progress.set(None);
        match result {
            Ok((Answer::Started { warning, view }, _)) => {
                self.view.set(view.unwrap_or_default());
                self.error.set(warning);
            }
            Ok(_) => self.error.set(Some(unexpected().to_string())),
            Err(e) => self.error.set(Some(link_not_opened(&e))),
        }
    }

    /// The share link in the address, if it is to be opened: the engine checks it first, and
    /// the user is asked before big work and before it replaces a saved session. A link that
    /// cannot be opened, or is declined for its size, leaves the address (a reload would try
    /// it again); `Err` is what the page says about it. One declined because it would replace
    /// the saved session stays, to be opened another time.
    async fn link_to_open(self: &Rc<Self>, replaces_saved: bool) -> Result<Option<String>, String> {
        let Some(fragment) = shared_fragment_in_location() else { return Ok(None) };
        let summary = match self.call(Request::CheckLink { fragment: fragment.clone() }, Vec::new()).await {
            Ok((Answer::Link(summary), _)) => Ok(summary),
            Ok(_) => Err(unexpected()),
            Err(e) => Err(e),
        };
        let summary = summary.map_err(|e| {
            forget_location_fragment();
            link_not_opened(&e)
        })?;
        if let Some(work) = summary.big_work()
            && !confirm_big_link(&work)
        {
            forget_location_fragment();
            return Err(format!("The share link was not opened (it {work}) and was removed from the address bar."));
        }
        if replaces_saved && !confirm_replacing_session() {
            return Ok(None);
        }
        // Whatever becomes of the link now, a reload does not replay it.
        forget_location_fragment();
        Ok(Some(fragment))
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

    /// Ingests one trip file (its bytes go to the worker as they are). A bad file changes nothing.
    pub async fn load(self: &Rc<Self>, name: &str, bytes: Uint8Array, month: Option<&str>) -> Result<LoadedFile> {
        let request = Request::Load { name: name.to_string(), month: month.map(str::to_string) };
        match self.ask_with(request, vec![bytes]).await?.0 {
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
        let (paths, payloads): (Vec<String>, Vec<Uint8Array>) =
            files.into_iter().map(|(path, bytes)| (path, Uint8Array::from(bytes.as_slice()))).unzip();
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
            (Answer::Bytes, mut payloads) => payloads.pop().ok_or_else(unexpected),
            _ => Err(unexpected()),
        }
    }

    /// A request whose outcome the page reports (the error line, or clears it).
    async fn ask(self: &Rc<Self>, request: Request) -> Result<Answer> {
        self.ask_with(request, Vec::new()).await.map(|(answer, _)| answer)
    }

    async fn ask_with(self: &Rc<Self>, request: Request, payloads: Vec<Uint8Array>) -> Result<(Answer, Vec<Uint8Array>)> {
        let result = self.call(request, payloads).await;
        self.report(result)
    }

    /// Sends `request` and waits for its reply; the reply's warning (a failed save) is shown.
    async fn call(self: &Rc<Self>, request: Request, payloads: Vec<Uint8Array>) -> Result<(Answer, Vec<Uint8Array>)> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id, sender);
        self.send(&Message::Call { id, request }, payloads);
        let (result, payloads) = receiver.await.unwrap_or_else(|_| (Err(Error::Stopped("no reply".into())), Vec::new()));
        result.map(|answer| (answer, payloads))
    }

    fn send(&self, message: &Message, payloads: Vec<Uint8Array>) {
        let json = message.to_json();
        if !self.ready.get() {
            self.queued.borrow_mut().push((json, payloads));
            return;
        }
        post(self.worker.borrow().as_ref(), &json, &payloads);
    }

    fn receive(self: &Rc<Self>, event: Event, payloads: Vec<Uint8Array>) {
        match event {
            Event::Ready => {
                self.ready.set(true);
                let queued = std::mem::take(&mut *self.queued.borrow_mut());
                for (json, payloads) in queued {
                    post(self.worker.borrow().as_ref(), &json, &payloads);
                }
            }
            Event::Reply { id, result, warning } => {
                if let Some(sender) = self.pending.borrow_mut().remove(&id) {
                    let _ = sender.send((result, payloads));
                }
                if warning.is_some() {
                    self.error.set(warning);
                }
            }
            Event::Snapshot(snapshot) => {
                if self.snapshot.with_untracked(|s| s.project != snapshot.project) || self.project.with_untracked(Option::is_none) {
                    self.project.set(snapshot.project.parse().ok());
                }
                self.snapshot.set(*snapshot);
            }
            Event::Progress(progress) => self.progress.set(progress),
            Event::Running { days } => self.running.set(days),
            Event::Fatal(why) => self.restart(why, true),
        }
    }

    /// Replaces a dead (or stuck) worker with a new one on the last saved state; whatever was
    /// waiting for the old one fails with `why`. A crash (not a cancel) also leaves details a
    /// user can copy into a bug report.
    fn restart(self: &Rc<Self>, why: String, crashed: bool) {
        let details = crashed.then(|| crash_details(&why, self.progress.get_untracked().map(|p| p.label)));
        if let Some(worker) = self.worker.borrow_mut().take() {
            worker.terminate();
        }
        self.ready.set(false);
        self.queued.borrow_mut().clear();
        let waiting = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, sender) in waiting {
            let _ = sender.send((Err(Error::Stopped(why.clone())), Vec::new()));
        }
        self.running.set(BTreeSet::new());
        spawn_worker(self);
        let session = self.clone();
        leptos::task::spawn_local(async move {
            // After the failed calls above have reported (and cleared the status bar).
            session.progress.set(Some(Progress::uncancellable("Restarting the engine on the last saved state", 0, 1)));
            let restarted = session.call(Request::Open, Vec::new()).await;
            let restarted = match restarted {
                Ok(_) => session.call(Request::Start { shared: None }, Vec::new()).await.map(|_| ()),
                Err(e) => Err(e),
            };
            session.progress.set(None);
            session.error.set(Some(match restarted {
                Ok(()) => Error::Stopped(why).to_string(),
                Err(e) => format!("{}; restarting failed: {e}", Error::Stopped(why)),
            }));
            session.crash_details.set(details);
        });
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

fn spawn_worker(session: &Shared) {
    let worker = match Worker::new(WORKER_SCRIPT) {
        Ok(worker) => worker,
        Err(_) => {
            session.error.set(Some("This browser cannot start the engine's Web Worker.".into()));
            return;
        }
    };
    let weak = Rc::downgrade(session);
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
        let Some(session) = weak.upgrade() else { return };
        let Some((json, payloads)) = wire::decode(&message.data()) else { return };
        match Event::from_json(&json) {
            Ok(event) => session.receive(event, payloads),
            Err(e) => session.restart(e, true),
        }
    });
    // A trap (out of memory, a panic) or a script that cannot load.
    let weak = Rc::downgrade(session);
    let on_error = Closure::<dyn Fn(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
        event.prevent_default();
        if let Some(session) = weak.upgrade() {
            session.restart(event.message(), true);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The handlers live as long as this worker; a restart makes new ones.
    on_message.forget();
    on_error.forget();
    *session.worker.borrow_mut() = Some(worker);
}

fn post(worker: Option<&Worker>, json: &str, payloads: &[Uint8Array]) {
    let Some(worker) = worker else { return };
    let wire = wire::encode(json, payloads);
    let _ = worker.post_message_with_transfer(&wire.message, &wire.transfer);
}

/// The crash report: what stopped, during what, when, in which browser.
fn crash_details(why: &str, doing: Option<String>) -> String {
    let browser = web_sys::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
    let when = String::from(js_sys::Date::new_0().to_iso_string());
    let doing = doing.unwrap_or_else(|| "nothing (idle)".into());
    format!(
        "Backfill {} engine crash\nwhen: {when}\ndoing: {doing}\ncause: {why}\nbrowser: {browser}\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn unexpected() -> Error {
    Error::Stopped("the engine answered another request".into())
}

/// The share-link fragment in the page's address, if it has one.
fn shared_fragment_in_location() -> Option<String> {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    hash.starts_with(share::FRAGMENT_PREFIX).then_some(hash)
}

/// Why a share link was not opened; it has left the address bar by then.
fn link_not_opened(error: &Error) -> String {
    format!("The share link was not opened and was removed from the address bar. {}", sentence(&error.to_string()))
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    let end = if text.ends_with('.') { "" } else { "." };
    format!("{first}{}{end}", chars.as_str())
}

fn confirm_big_link(work: &str) -> bool {
    let message = format!(
        "This share link {work} as it opens, which can take minutes and much of this device's memory. Open it? \
         (Cancel keeps your session and removes the link from the address bar.)"
    );
    web_sys::window().and_then(|w| w.confirm_with_message(&message).ok()).unwrap_or(false)
}

fn confirm_replacing_session() -> bool {
    let message = "Open the shared session? It replaces the session saved in this browser (its files, tables and runs). \
                   Cancel keeps yours; the link stays in the address bar.";
    web_sys::window().and_then(|w| w.confirm_with_message(message).ok()).unwrap_or(false)
}

/// Takes the link out of the address, once it is being opened or has been refused: an opened
/// session lives in browser storage (a reload must not replay the link over what was done
/// since), and a link that fails or is refused must not be tried again by every reload.
fn forget_location_fragment() {
    let Some(window) = web_sys::window() else { return };
    let path = window.location().pathname().unwrap_or_default();
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
    }
}
