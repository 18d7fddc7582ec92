//! The page's one engine and what the views show of it. Every operation (from a view or the
//! page API) goes through here: it takes the engine lock (so operations run one at a time),
//! publishes a fresh [`Snapshot`], then saves the state to browser storage.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use chrono::{Duration, NaiveDate};
use futures::lock::Mutex;
use leptos::prelude::*;

use crate::browser_store::BrowserStore;
use crate::chart::{self, DailyPoint};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::history::RunRecord;
use crate::partitions::{day_text, range_text};
use crate::actions::Action;
use crate::compare::{self, Comparison};
use crate::import;
use crate::lesson::{self, StepOutcome};
use crate::project::{LESSON, Project, builtin};
use crate::share::{self, SharedSession, View};
use crate::table_diff::KeyedRows;
use crate::query::cell;
use crate::run::BuildRequest;
use crate::sample::{FileSchema, SampleSpec};
use crate::state::{LoadedFile, State};
use crate::warehouse::Table;

/// The built-in sample: the same rows as `backfill gen --month 2023-03 --rows 200000 --seed 1`.
pub const SAMPLE_MONTH: &str = "2023-03";
pub const SAMPLE_ROWS: usize = 200_000;

/// What the views render; rebuilt after every operation.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub partitions: Vec<PartitionCell>,
    /// Every day of the partitions definition, in order (the chart's x axis).
    pub days: Vec<NaiveDate>,
    pub daily: Vec<DailyPoint>,
    /// Days of `daily_metrics` outside the partitions definition (dirty pickups): not charted.
    pub daily_outside: usize,
    pub runs: Vec<RunRecord>,
    pub files: Vec<LoadedFile>,
    pub tables: Vec<String>,
    pub project: Option<Project>,
    /// Loaded months that stg_trips has not been rebuilt with yet.
    pub unbuilt_months: Vec<String>,
    /// `daily_metrics` by day, for time travel (`None` if it is missing or not one row a day).
    pub daily_rows: Option<KeyedRows>,
    pub lesson: Vec<StepOutcome>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionCell {
    pub day: NaiveDate,
    pub status: &'static str,
    /// Run and time, or the error.
    pub detail: String,
}

/// A long operation's progress, for the status bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub label: String,
    pub done: usize,
    pub total: usize,
}

pub struct Session {
    engine: Mutex<Engine>,
    store: RefCell<Option<BrowserStore>>,
    pub snapshot: RwSignal<Snapshot>,
    pub progress: RwSignal<Option<Progress>>,
    pub error: RwSignal<Option<String>>,
    /// Days being materialized right now (shown as `running`).
    pub running: RwSignal<BTreeSet<NaiveDate>>,
    /// What the page shows that a share link keeps (lesson step, time-travel position).
    pub view: RwSignal<View>,
    cancel: RwSignal<bool>,
}

pub type Shared = Rc<Session>;

impl Session {
    pub fn new() -> Result<Shared> {
        let project = builtin(LESSON)?;
        Ok(Rc::new(Session {
            engine: Mutex::new(Engine::new(project, State::default())),
            store: RefCell::new(None),
            snapshot: RwSignal::new(Snapshot::default()),
            progress: RwSignal::new(None),
            error: RwSignal::new(None),
            running: RwSignal::new(BTreeSet::new()),
            view: RwSignal::new(View::default()),
            cancel: RwSignal::new(false),
        }))
    }

    /// Restores the saved state, or on a first visit ingests the sample month and builds the
    /// lesson.
    pub async fn start(&self) {
        let result = self.start_inner().await;
        // A failed start is shown on the page by `report`; there is no caller to hand it to.
        if let Ok(Some(warning)) = self.report(result) {
            self.error.set(Some(warning));
        }
    }

    /// Returns a warning when the browser offers no storage (e.g. a private window):
    /// everything works, nothing persists.
    async fn start_inner(&self) -> Result<Option<String>> {
        let (store, warning) = match BrowserStore::open().await {
            Ok(store) => (Some(store), None),
            Err(e) => (None, Some(format!("{e}; this session will not be saved"))),
        };
        let mut engine = self.engine.lock().await;
        let restored = store.as_ref().filter(|s| s.has_state()).map(|s| State::load(s)).transpose()?;
        *self.store.borrow_mut() = store;
        // Opening a link replaces this browser's session: ask first when there is one.
        let shared = shared_in_location()?.filter(|_| restored.is_none() || confirm_replacing_session());
        match (shared, restored) {
            (Some(shared), _) => return Ok(self.open_shared(&mut engine, &shared).await?.or(warning)),
            (None, Some(state)) => {
                engine.state = state;
                engine.restore_project(builtin(LESSON)?)?;
                self.publish(&engine).await;
            }
            (None, None) => {
                self.progress.set(Some(Progress { label: "Generating the sample month".into(), done: 0, total: 3 }));
                engine.load_sample(&sample_spec(SAMPLE_MONTH, SAMPLE_ROWS))?;
                self.progress.set(Some(Progress { label: "Building the lesson".into(), done: 1, total: 3 }));
                engine.build(&BuildRequest::default()).await?;
                // The chart first: saving writes every table as Parquet, which takes a while.
                self.publish(&engine).await;
                self.progress.set(Some(Progress { label: "Saving in this browser".into(), done: 2, total: 3 }));
                self.save(&mut engine).await?;
            }
        }
        Ok(warning)
    }

    /// Opens a share link pasted into the address of an open page (a fragment change does not
    /// reload it), after asking: it replaces this session.
    pub async fn open_link_in_location(&self) {
        let result = match shared_in_location() {
            Ok(Some(shared)) if confirm_replacing_session() => {
                let mut engine = self.engine.lock().await;
                self.open_shared(&mut engine, &shared).await
            }
            Ok(_) => return,
            Err(e) => Err(e),
        };
        if let Ok(Some(warning)) = self.report(result) {
            self.error.set(Some(warning));
        }
    }

    /// Replays `shared` on an empty state, shows and saves it; returns a warning naming the
    /// files the link could not carry.
    async fn open_shared(&self, engine: &mut Engine, shared: &SharedSession) -> Result<Option<String>> {
        self.progress.set(Some(Progress { label: "Opening the shared session".into(), done: 0, total: 1 }));
        next_frame().await;
        let notes = share::open(engine, shared).await?;
        self.view.set(shared.view.clone());
        self.publish(engine).await;
        self.save(engine).await?;
        forget_location_fragment();
        Ok((!notes.is_empty()).then(|| format!("Opened the shared session without its files from disk: {}", notes.join("; "))))
    }

    /// Runs lesson step `number` (1 starts over).
    pub async fn lesson_step(&self, number: usize) -> Result<StepOutcome> {
        let mut engine = self.engine.lock().await;
        self.progress.set(Some(Progress { label: format!("Lesson step {number}"), done: 0, total: 1 }));
        next_frame().await;
        let result = lesson::run_step(&mut engine, number).await;
        self.view.update(|v| v.run = None);
        self.finish(&mut engine, result).await
    }

    /// Runs the lesson's data story, or this session's arrivals, through every strategy. The
    /// session's own tables are not touched.
    pub async fn compare(&self, lesson_story: bool) -> Result<Comparison> {
        let arrivals = if lesson_story {
            lesson::data_story()
        } else {
            compare::arrivals(&self.engine.lock().await.state.actions)
        };
        let progress = self.progress;
        let result = compare::compare(&arrivals, async |done, all| {
            progress.set(Some(Progress { label: format!("Comparing strategies: arrival {} of {all}", done + 1), done, total: all }));
            next_frame().await;
        })
        .await;
        self.report(result)
    }

    /// The page's address with this session in its fragment.
    pub async fn share_link(&self) -> Result<String> {
        let engine = self.engine.lock().await;
        let mut view = self.view.get_untracked();
        view.lesson_steps = engine.state.lesson.len();
        let fragment = SharedSession::new(engine.state.actions.clone(), view).to_fragment();
        let base = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .map(|href| href.split('#').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        self.report(fragment.map(|f| format!("{base}{f}")))
    }

    /// Ingests one trip file. A bad file changes nothing.
    pub async fn load(&self, name: &str, bytes: &[u8], month: Option<&str>) -> Result<LoadedFile> {
        let mut engine = self.engine.lock().await;
        let result = engine.load_trips(name, bytes, month);
        self.finish(&mut engine, result).await
    }

    /// Generates a sample month in the page and ingests it.
    pub async fn generate(&self, month: &str, rows: usize) -> Result<LoadedFile> {
        let mut engine = self.engine.lock().await;
        let result = engine.load_sample(&sample_spec(month, rows));
        self.finish(&mut engine, result).await
    }

    pub async fn build(&self, request: &BuildRequest) -> Result<RunRecord> {
        let mut engine = self.engine.lock().await;
        let result = engine.build(request).await;
        self.finish(&mut engine, result).await
    }

    /// Materializes a range: one run per day (with progress, cancellable between days), or
    /// one run over the whole range.
    pub async fn materialize(&self, range: &str, single_run: bool) -> Result<Vec<RunRecord>> {
        let mut engine = self.engine.lock().await;
        let days = match engine.partitions_definition() {
            Some(definition) => definition.select(range),
            None => Err(Error::Partition { partition: range.into(), message: "no trips loaded: no partitions yet".into() }),
        };
        let days = match days {
            Ok(days) => days,
            Err(e) => return self.finish(&mut engine, Err(e)).await,
        };
        self.cancel.set(false);
        let groups: Vec<Vec<NaiveDate>> = if single_run { vec![days] } else { days.into_iter().map(|d| vec![d]).collect() };
        let total = groups.len();
        let mut records = Vec::new();
        for (index, group) in groups.into_iter().enumerate() {
            if self.cancel.get_untracked() {
                break;
            }
            let (first, last) = (group[0], group[group.len() - 1]);
            self.running.set(group.iter().copied().collect());
            self.progress.set(Some(Progress { label: format!("Materializing {}", range_label(first, last)), done: index, total }));
            next_frame().await;
            match engine.materialize(&range_text(first, last), true).await {
                Ok(mut done) => records.append(&mut done),
                Err(e) => {
                    self.running.set(BTreeSet::new());
                    return self.finish(&mut engine, Err(e)).await;
                }
            }
            // Each partition's outcome is kept even if a later one fails or is cancelled.
            if let Err(e) = self.save(&mut engine).await {
                self.error.set(Some(e.to_string()));
            }
            self.publish(&engine).await;
        }
        self.running.set(BTreeSet::new());
        self.finish(&mut engine, Ok(records)).await
    }

    /// Replaces a model's SQL (the project is re-read, so its YAML config still applies).
    pub async fn set_model_sql(&self, model: &str, sql: &str) -> Result<()> {
        let mut engine = self.engine.lock().await;
        let result = engine.change_project(Action::Model { name: model.to_string(), sql: sql.to_string() });
        self.finish(&mut engine, result).await
    }

    /// Replaces the project with a dropped one: a zip archive, or a folder's files by path.
    /// A file that is not a dbt project, or a project that does not parse, changes nothing.
    pub async fn import_project(&self, name: &str, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        let mut engine = self.engine.lock().await;
        let files = match files.as_slice() {
            [(path, bytes)] if path.ends_with(".zip") => import::from_zip(path, bytes),
            _ => import::from_files(name, files),
        };
        let result = files.and_then(|files| engine.change_project(Action::ProjectFiles { files: files.0 }));
        self.finish(&mut engine, result).await
    }

    /// The project as a dbt project zip, its Dagster partitions starting where the page's do.
    pub async fn export_project(&self) -> Result<Vec<u8>> {
        let engine = self.engine.lock().await;
        let start = engine.partitions_definition().map_or_else(|| "2023-03-01".to_string(), |d| day_text(d.start));
        let result = crate::export::project_zip(&engine.project, &start);
        self.report(result)
    }

    pub fn cancel(&self) {
        self.cancel.set(true);
    }

    pub async fn query(&self, sql: &str) -> Result<Table> {
        let engine = self.engine.lock().await;
        let result = engine.query(sql).await;
        if let Err(e) = &result {
            self.error.set(Some(e.to_string()));
        }
        result
    }

    pub async fn partitions_json(&self) -> serde_json::Value {
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

    pub async fn runs_json(&self) -> serde_json::Value {
        let engine = self.engine.lock().await;
        serde_json::to_value(&engine.state.runs).unwrap_or_default()
    }

    /// Forgets every file, table, partition and run, then starts over with the sample.
    pub async fn reset(&self) {
        {
            let mut engine = self.engine.lock().await;
            engine.state = State::default();
            if let Ok(project) = builtin(LESSON) {
                engine.project = project;
            }
            self.view.set(View::default());
            let taken = self.store.borrow_mut().take();
            if let Some(mut store) = taken {
                if let Err(e) = store.clear().await {
                    self.error.set(Some(e.to_string()));
                }
                *self.store.borrow_mut() = Some(store);
            }
        }
        self.error.set(None);
        self.start().await;
    }

    /// Publishes, then saves (whether the operation succeeded or a run failed and was
    /// recorded), and shows an error if there was one. A failed save is shown even when the
    /// operation succeeded.
    async fn finish<T>(&self, engine: &mut Engine, result: Result<T>) -> Result<T> {
        self.publish(engine).await;
        let saved = self.save(engine).await;
        let result = self.report(result);
        if let Err(e) = saved {
            self.error.set(Some(format!("{e}: the page shows the change, but it is not saved in this browser")));
        }
        result
    }

    fn report<T>(&self, result: Result<T>) -> Result<T> {
        self.progress.set(None);
        match &result {
            Ok(_) => self.error.set(None),
            Err(e) => self.error.set(Some(e.to_string())),
        }
        result
    }

    async fn save(&self, engine: &mut Engine) -> Result<()> {
        // The store is taken out while flushing so no RefCell borrow lives across an await.
        let Some(mut store) = self.store.borrow_mut().take() else { return Ok(()) };
        let result = match engine.state.save(&mut store) {
            Ok(()) => store.flush().await,
            Err(e) => Err(e),
        };
        *self.store.borrow_mut() = Some(store);
        result
    }

    async fn publish(&self, engine: &Engine) {
        let snapshot = snapshot(engine).await;
        self.snapshot.set(snapshot);
    }
}

async fn snapshot(engine: &Engine) -> Snapshot {
    let days: Vec<NaiveDate> = engine
        .partitions_definition()
        .map(|d| d.start.iter_days().take_while(|day| *day < d.end).collect())
        .unwrap_or_default();
    let partitions = engine
        .partitions()
        .into_iter()
        .map(|p| {
            let detail = match &p.status {
                crate::partitions::PartitionStatus::Missing => "not materialized yet".to_string(),
                crate::partitions::PartitionStatus::Materialized { run_id, at } => format!("run {run_id} at {at}"),
                crate::partitions::PartitionStatus::Stale { run_id, at } => {
                    format!("run {run_id} at {at}; its source rows changed since")
                }
                crate::partitions::PartitionStatus::Failed { run_id, error, .. } => format!("run {run_id} failed: {error}"),
            };
            PartitionCell { day: p.day, status: p.status.name(), detail }
        })
        .collect();
    let daily_rows = daily_rows(engine).await;
    let all_daily = daily_rows.as_ref().map(chart::daily_points).unwrap_or_default();
    let unbuilt_months = unbuilt_months(engine).await;
    let (daily, outside): (Vec<DailyPoint>, Vec<DailyPoint>) =
        all_daily.into_iter().partition(|p| days.first().is_some_and(|f| p.date >= *f) && days.last().is_some_and(|l| p.date <= *l));
    let tables = engine.state.warehouse.relations().map(|(name, _)| name.to_string()).collect();
    Snapshot {
        partitions,
        days,
        daily,
        daily_outside: outside.len(),
        runs: engine.state.runs.clone(),
        files: engine.state.files.clone(),
        tables,
        project: Some(engine.project.clone()),
        unbuilt_months,
        daily_rows,
        lesson: engine.state.lesson.clone(),
        actions: engine.state.actions.clone(),
    }
}

async fn daily_rows(engine: &Engine) -> Option<KeyedRows> {
    let table = engine.query("select * from daily_metrics").await.ok()?;
    KeyedRows::of(&table, &["date_of_business".to_string()])
}

/// Months of loaded files missing from stg_trips: their partitions would read nothing until
/// stg_trips is rebuilt (the lesson's orchestrator runs it as its own, unpartitioned asset).
async fn unbuilt_months(engine: &Engine) -> Vec<String> {
    let Ok(table) = engine.query("select distinct partition_date from stg_trips").await else { return Vec::new() };
    let built: BTreeSet<String> =
        table.batches.iter().flat_map(|b| (0..b.num_rows()).filter_map(move |r| cell(b, 0, r))).collect();
    engine.state.files.iter().map(|f| f.month.clone()).filter(|m| !built.contains(m)).collect()
}

/// A month as `backfill gen` makes it by default (seed 1, the 2023 layout).
fn sample_spec(month: &str, rows: usize) -> SampleSpec {
    SampleSpec { month: month.into(), rows, seed: 1, schema: FileSchema::Y2023 }
}

/// The shared session in the page's address, if it has one.
fn shared_in_location() -> Result<Option<SharedSession>> {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    if !hash.starts_with(share::FRAGMENT_PREFIX) {
        return Ok(None);
    }
    SharedSession::from_fragment(&hash).map(Some)
}

fn confirm_replacing_session() -> bool {
    let message = "Open the shared session? It replaces the session saved in this browser (its files, tables and runs). \
                   Cancel keeps yours; the link stays in the address bar.";
    web_sys::window().and_then(|w| w.confirm_with_message(message).ok()).unwrap_or(false)
}

/// Once opened, the session lives in browser storage: a reload must not replay the link over
/// what was done since.
fn forget_location_fragment() {
    let Some(window) = web_sys::window() else { return };
    let path = window.location().pathname().unwrap_or_default();
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
    }
}

fn range_label(first: NaiveDate, last: NaiveDate) -> String {
    if first == last {
        day_text(first)
    } else {
        format!("{} to {}", day_text(first), day_text(last))
    }
}

/// The day after `day`, as the partitions' `max_date` is.
pub fn next_day(day: NaiveDate) -> NaiveDate {
    day + Duration::days(1)
}

/// Lets the browser paint before the next piece of work.
pub async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
