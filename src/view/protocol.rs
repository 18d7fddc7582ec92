//! What the page and the engine's Web Worker say to each other: one typed request/answer pair
//! and the events the worker publishes while it works. Target-independent, so both sides and
//! the native tests share it; on the wire each message is JSON plus its byte payloads
//! (files, zips), which travel beside the JSON instead of inside it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::course::compare::Comparison;
use crate::course::lesson::StepOutcome;
use crate::course::share::{LinkSummary, View};
use crate::dbt::history::RunRecord;
use crate::dbt::lineage::Lineage;
use crate::dbt::project::ProjectFiles;
use crate::dbt::request::BuildRequest;
use crate::dbt::table_diff::KeyedRows;
use crate::error::Error;
use crate::orchestrate::actions::Action;
use crate::orchestrate::state::LoadedFile;
use crate::view::chart::DailyPoint;

/// One operation the page asks of the engine. Byte payloads (`Load`'s file, `ImportProject`'s
/// files in `paths` order) travel beside the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "with", rename_all = "snake_case")]
pub enum Request {
    /// Opens browser storage: is there a saved session?
    Open,
    /// Restores the saved session, or opens `shared` (a share-link fragment) in its place, or
    /// on a first visit ingests the sample month and builds the lesson.
    Start { shared: Option<String> },
    /// Decodes and checks a share-link fragment without opening it: what it would do, or why
    /// it cannot be opened. The page asks before big work.
    CheckLink { fragment: String },
    /// Replaces this session with a shared one (a link pasted into the open page).
    OpenShared { fragment: String },
    Load { name: String, month: Option<String> },
    Generate { month: String, rows: usize },
    Build(BuildRequest),
    /// One run per day (cancellable between days), or one run over the range.
    Materialize { range: String, single_run: bool },
    SetModelSql { model: String, sql: String },
    /// A zip (one path ending in `.zip`) or a folder's files.
    ImportProject { name: String, paths: Vec<String> },
    /// `single_run`: the backfill policy the page's backfills use, written into the Dagster code.
    ExportProject { single_run: bool },
    /// Rows as JSON objects (the page API's `query`).
    Query { sql: String },
    /// One page of a table, as text, with its row count.
    TablePage { table: String, order: Option<(String, bool)>, offset: usize, limit: usize },
    /// One page of what a query returns, its refs and sources compiled as `dbt show --inline`
    /// compiles them (the scratchpad).
    Show { sql: String, offset: usize, limit: usize },
    /// A whole table as CSV or Parquet bytes.
    Download { table: String, csv: bool },
    Partitions,
    Runs,
    LessonStep { number: usize },
    Compare { lesson_story: bool },
    /// The share-link fragment (`#s=…`) of this session, opening on `view`.
    ShareFragment { view: View },
    /// Forgets everything saved, then starts over.
    Reset,
}

/// A request's successful answer; bytes (exported zips, downloads) travel beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "with", rename_all = "snake_case")]
pub enum Answer {
    Done,
    Opened { saved: bool, warning: Option<String> },
    /// What a start or an opened link wants said (files a link cannot carry), and the view
    /// an opened link asks for.
    Started { warning: Option<String>, view: Option<View> },
    File(LoadedFile),
    Run(RunRecord),
    Runs(Vec<RunRecord>),
    Json(serde_json::Value),
    Page(TablePage),
    Bytes,
    Step(Box<StepOutcome>),
    Comparison(Box<Comparison>),
    Text(String),
    Link(LinkSummary),
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "with", rename_all = "snake_case")]
pub enum Event {
    /// The worker listens: requests may be sent.
    Ready,
    /// The answer to request `id`; `warning` is said even when the request succeeded (a save
    /// that failed after the change was made).
    Reply { id: u64, result: Result<Answer, Error>, warning: Option<String> },
    Snapshot(Box<Snapshot>),
    Progress(Option<Progress>),
    /// Days being materialized right now.
    Running {
        #[serde(with = "crate::serde_dates::days")]
        days: BTreeSet<NaiveDate>,
    },
    /// The engine stopped on an internal error; the worker is unusable from here on.
    Fatal(String),
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", content = "with", rename_all = "snake_case")]
pub enum Message {
    Call { id: u64, request: Request },
    /// Stop the running operation at its next checkpoint (between partitions).
    Cancel,
}

/// What the views render; rebuilt by the worker after every operation. The page keeps each
/// part in a signal of its own, so a view re-renders only when its part changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub partitions: Vec<PartitionCell>,
    pub daily: Daily,
    pub runs: Runs,
    pub files: Vec<LoadedFile>,
    /// Every relation by name, with a stamp that changes whenever its rows may have (a view's
    /// whenever its SQL or any table does): what shows a relation reads it again only then.
    pub tables: BTreeMap<String, u64>,
    /// The project's files; the page parses them for the editor and lineage.
    pub project: ProjectFiles,
    pub lineage: Lineage,
    /// Loaded months that stg_trips has not been rebuilt with yet.
    pub unbuilt_months: Vec<String>,
    pub lesson: Vec<StepOutcome>,
    pub actions: Vec<Action>,
}

/// The session's runs from the `from`th on: the page keeps those before. A run is never changed
/// once recorded, so a partition run sends its own run, not every run's SQL and plan again
/// (the bulk of a snapshot, growing with every run of a backfill).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    pub from: usize,
    pub runs: Vec<RunRecord>,
}

impl Runs {
    pub fn all(runs: Vec<RunRecord>) -> Runs {
        Runs { from: 0, runs }
    }

    /// `now` as sent to a page that has `sent`: from the first run that differs.
    pub fn since(sent: &[RunRecord], now: &[RunRecord]) -> Runs {
        let from = sent.iter().zip(now).take_while(|(a, b)| a == b).count();
        Runs { from, runs: now[from..].to_vec() }
    }

    /// Brings `runs` up to date; whether they changed.
    pub fn apply(self, runs: &mut Vec<RunRecord>) -> bool {
        if self.from == runs.len() && self.runs.is_empty() {
            return false;
        }
        runs.truncate(self.from);
        runs.extend(self.runs);
        true
    }
}

/// `daily_metrics` as the chart reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Daily {
    /// Every day of the partitions definition, in order (the chart's x axis).
    #[serde(with = "crate::serde_dates::days")]
    pub days: Vec<NaiveDate>,
    /// The table's rows on those days.
    pub points: Vec<DailyPoint>,
    /// Days of the table outside the partitions definition (dirty pickups): not charted.
    pub outside: usize,
    /// The table by day, for time travel (`None` if it is missing or not one row a day).
    pub rows: Option<KeyedRows>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionCell {
    #[serde(with = "crate::serde_dates::day")]
    pub day: NaiveDate,
    pub status: String,
    /// Run and time, or the error.
    pub detail: String,
}

/// A long operation's progress, for the status bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub label: String,
    pub done: usize,
    pub total: usize,
    /// False once the outcome is shown and being saved, or while the session starts: Cancel
    /// is offered only while it can still leave everything as it was.
    pub cancellable: bool,
}

impl Progress {
    pub fn step(label: impl Into<String>, done: usize, total: usize) -> Progress {
        Progress { label: label.into(), done, total, cancellable: true }
    }

    pub fn uncancellable(label: impl Into<String>, done: usize, total: usize) -> Progress {
        Progress { label: label.into(), done, total, cancellable: false }
    }
}

/// One page of a table, as the tables view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TablePage {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub total: usize,
}

impl Message {
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Message, String> {
        serde_json::from_str(text).map_err(|e| format!("bad message to the engine: {e}"))
    }
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Event, String> {
        serde_json::from_str(text).map_err(|e| format!("bad message from the engine: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let message = Message::Call {
            id: 7,
            request: Request::Materialize { range: "2023-03-04..2023-03-06".into(), single_run: true },
        };
        assert_eq!(Message::from_json(&message.to_json()), Ok(message));
        let failed = Event::Reply {
            id: 7,
            result: Err(Error::Partition { partition: "2023-13-01".into(), message: "not a day".into() }),
            warning: None,
        };
        assert_eq!(Event::from_json(&failed.to_json()).map(|e| e.to_json()), Ok(failed.to_json()));
        let day = NaiveDate::from_ymd_opt(2023, 3, 4).unwrap_or_default();
        let snapshot = Snapshot {
            daily: Daily { days: vec![day], ..Daily::default() },
            partitions: vec![PartitionCell { day, status: "missing".into(), detail: "not materialized yet".into() }],
            tables: BTreeMap::from([("main.trips".into(), 3)]),
            ..Snapshot::default()
        };
        let event = Event::Snapshot(Box::new(snapshot));
        assert_eq!(Event::from_json(&event.to_json()), Ok(event));
    }

    #[test]
    fn a_missing_average_survives_the_trip() {
        let point = DailyPoint { date: NaiveDate::default(), trip_count: 3, average_duration: f64::NAN, average_amount: 1.5, pct_over_30_min: 0.0 };
        let snapshot = Snapshot { daily: Daily { points: vec![point], ..Daily::default() }, ..Snapshot::default() };
        let Ok(Event::Snapshot(back)) = Event::from_json(&Event::Snapshot(Box::new(snapshot)).to_json()) else {
            panic!("the snapshot did not come back")
        };
        assert!(back.daily.points[0].average_duration.is_nan());
        assert_eq!(back.daily.points[0].average_amount, 1.5);
    }

    #[test]
    fn runs_travel_from_the_first_the_page_does_not_have() {
        let run = |id: u64| RunRecord {
            id,
            started_at: "2023-03-04 00:00:00".into(),
            command: format!("dbt build {id}"),
            vars: crate::dbt::request::Vars::new(),
            partitions: Vec::new(),
            status: crate::dbt::history::RunStatus::Success,
            error: None,
            models: Vec::new(),
            tests: Vec::new(),
            duration_ms: 1,
        };
        let all: Vec<RunRecord> = (1..=4).map(run).collect();
        let sent_and_kept = |sent: &[RunRecord], now: &[RunRecord]| {
            let change = Runs::since(sent, now);
            let wire = Event::from_json(&Event::Snapshot(Box::new(Snapshot { runs: change.clone(), ..Snapshot::default() })).to_json());
            assert!(matches!(wire, Ok(Event::Snapshot(s)) if s.runs == change));
            let mut page = sent.to_vec();
            let changed = change.clone().apply(&mut page);
            assert_eq!(page, now);
            (change.from, change.runs.len(), changed)
        };
        assert_eq!(sent_and_kept(&[], &all), (0, 4, true), "a new page gets every run");
        assert_eq!(sent_and_kept(&all[..3], &all), (3, 1, true), "a partition run sends its own");
        assert_eq!(sent_and_kept(&all, &all), (4, 0, false), "nothing new, nothing to show");
        assert_eq!(sent_and_kept(&all, &all[..2]), (2, 0, true), "a cancelled operation's runs go");
        let other: Vec<RunRecord> = [run(1), run(7)].into();
        assert_eq!(sent_and_kept(&all, &other), (1, 1, true), "another session's runs replace them from where they differ");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Message::from_json("{\"to\":\"call\",\"id\":-1}").is_err());
        assert!(Event::from_json("").is_err());
    }
}
