//! Share links: a session as a URL fragment. The fragment carries the session's actions (the
//! project changes, the sample recipes, the runs) and what the page was showing, as JSON,
//! deflated and base64url-encoded. Opening it replays the actions on an empty state, which
//! rebuilds the same tables. Files loaded from disk are not in links: only their names are.
//!
//! A link is written by a stranger: everything it asks for is bounded ([`Limit`]) and checked
//! before anything runs, and it is replayed into an engine of its own, which replaces the
//! receiver's only once the whole link has succeeded.

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Months, NaiveDate};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde::{Deserialize, Serialize};

use crate::course::builtin::{LESSON, builtin};
use crate::course::lesson;
use crate::error::{Error, Result};
use crate::limits::{Limit, quantity};
use crate::orchestrate::actions::Action;
use crate::orchestrate::engine::Engine;
use crate::orchestrate::partitions::parse_range;
use crate::orchestrate::state::State;
use crate::sources::ingest::parse_month;

/// The fragment's prefix: `https://…/#s=<payload>`.
pub const FRAGMENT_PREFIX: &str = "#s=";
/// Longer links are cut or refused by some chat tools and e-mail clients.
pub const CHAT_SAFE_LENGTH: usize = 2_000;
const VERSION: u32 = 1;
/// Above this many generated rows, the page asks before opening a link: it takes a while.
pub const CONFIRM_ROWS: u64 = 1_000_000;
/// Above this many partition runs (a year of days), the page asks too.
pub const CONFIRM_PARTITIONS: u64 = 366;
/// Where a link's own limits are counted.
const THE_LINK: &str = "this share link";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedSession {
    pub version: u32,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub view: View,
}

/// What the page showed, so the link opens on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// Lesson steps done: the link's first actions are theirs.
    #[serde(default)]
    pub lesson_steps: usize,
    /// The run the time-travel slider stood on, if not the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// The partitions selected, `anchor..end` (`2023-03-04..2023-03-06`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// The scratchpad's recent queries, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<String>,
    /// Backfills run one run per range of days instead of one per partition.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single_run: bool,
}

impl SharedSession {
    pub fn new(actions: Vec<Action>, view: View) -> SharedSession {
        SharedSession { version: VERSION, actions, view }
    }

    /// The fragment, `#s=` included. A session over a link's limits makes no link: it could
    /// not be opened.
    pub fn to_fragment(&self) -> Result<String> {
        self.check()?;
        let json = serde_json::to_vec(self).map_err(|e| Error::Usage(format!("share link: {e}")))?;
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&json).map_err(|e| Error::Usage(format!("share link: {e}")))?;
        let deflated = encoder.finish().map_err(|e| Error::Usage(format!("share link: {e}")))?;
        Ok(format!("{FRAGMENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(deflated)))
    }

    /// Reads a fragment (with or without `#s=`) and checks it ([`SharedSession::check`]);
    /// every failure says what is wrong with the link.
    pub fn from_fragment(fragment: &str) -> Result<SharedSession> {
        let payload = fragment.trim().trim_start_matches(FRAGMENT_PREFIX);
        Limit::LinkBytes.check(payload.len() as u64, THE_LINK)?;
        let deflated = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| bad(format!("it is cut short or altered ({e})")))?;
        // Read one byte past the limit, never more: a few kilobytes can inflate to gigabytes.
        let mut json = Vec::new();
        DeflateDecoder::new(deflated.as_slice())
            .take(Limit::LinkBytes.max() + 1)
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("it is cut short or altered ({e})")))?;
        if json.len() as u64 > Limit::LinkBytes.max() {
            return Err(Limit::LinkBytes.exceeded(None, THE_LINK));
        }
        let shared: SharedSession = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        if shared.version != VERSION {
            return Err(bad(format!("it was made by a newer Backfill (link version {})", shared.version)));
        }
        shared.check()?;
        Ok(shared)
    }

    /// Checks every bound before anything runs, and says what opening the link will do. An
    /// error about one action names its step (numbered as a failed replay would number it).
    pub fn check(&self) -> Result<LinkSummary> {
        Limit::LinkActions.check(self.actions.len() as u64, THE_LINK)?;
        Limit::RecentQueries.check(self.view.queries.len() as u64, THE_LINK)?;
        let steps = lesson::steps().len();
        if self.view.lesson_steps > steps {
            return Err(bad(format!("it asks for lesson step {}, and the lesson has {steps} steps", self.view.lesson_steps)));
        }
        let mut summary = LinkSummary { actions: self.actions.len(), missing_files: self.missing_files(), ..LinkSummary::default() };
        let mut months: Option<(NaiveDate, NaiveDate)> = None;
        for (index, action) in self.actions.iter().enumerate() {
            let step = index + 1;
            let place = || format!("step {step} of the link ({})", action.describe());
            let invalid = |message: String| Error::Replay { step, action: action.describe(), message };
            match action {
                Action::Sample { spec } => {
                    Limit::SampleRows.check(spec.rows as u64, place())?;
                    summary.rows = summary.rows.saturating_add(spec.rows as u64);
                    let month = parse_month(&spec.month).map_err(invalid)?;
                    months = Some(months.map_or((month, month), |(first, last)| (first.min(month), last.max(month))));
                }
                Action::LateTrips { rows, .. } => {
                    Limit::LateTrips.check(*rows as u64, place())?;
                    summary.rows = summary.rows.saturating_add(*rows as u64);
                }
                Action::Materialize { range, .. } => {
                    let (first, last) = parse_range(range).map_err(|e| invalid(e.to_string()))?;
                    summary.partitions = summary.partitions.saturating_add(last.signed_duration_since(first).num_days().unsigned_abs() + 1);
                }
                Action::ProjectFiles { files } => Limit::ProjectFiles.check(files.len() as u64, place())?,
                _ => {}
            }
        }
        Limit::LinkRows.check(summary.rows, THE_LINK)?;
        Limit::LinkPartitions.check(summary.partitions, THE_LINK)?;
        if let Some((first, last)) = months {
            // The days the partitions definition would span: from the first month to the end of the last.
            let end = last.checked_add_months(Months::new(1)).unwrap_or(last);
            let days = end.signed_duration_since(first).num_days().unsigned_abs();
            Limit::PartitionDays.check(days, format!("{THE_LINK}'s months ({} to {})", month_text(first), month_text(last)))?;
        }
        Ok(summary)
    }

    /// Names of files the link cannot bring along.
    pub fn missing_files(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::File { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// What opening a link will do, known before anything runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkSummary {
    pub actions: usize,
    /// Trips its sample months and late trips generate.
    pub rows: u64,
    /// Partitions it materializes (a day run twice counts twice).
    pub partitions: u64,
    /// Files from disk it names but cannot bring.
    pub missing_files: Vec<String>,
}

impl LinkSummary {
    /// What makes the link slow to open, when the page should ask first ("generates 2,000,000
    /// trips of sample data").
    pub fn big_work(&self) -> Option<String> {
        let rows = (self.rows > CONFIRM_ROWS).then(|| format!("generates {} of sample data", quantity(self.rows, "trips")));
        let partitions = (self.partitions > CONFIRM_PARTITIONS).then(|| format!("runs {}", quantity(self.partitions, "partitions")));
        let work: Vec<String> = rows.into_iter().chain(partitions).collect();
        (!work.is_empty()).then(|| work.join(" and "))
    }
}

/// Rebuilds `shared` in a new engine, from an empty state and the built-in lesson project: its
/// lesson steps first (so their outcomes are shown), then the rest of its actions. The caller
/// swaps the engine in only when the whole link succeeded, so a link that fails part way
/// leaves nothing behind. Returns the engine and notes on what could not come along.
pub async fn open(shared: &SharedSession) -> Result<(Engine, Vec<String>)> {
    let summary = shared.check()?;
    let mut engine = Engine::new(builtin(LESSON)?, State::default(), builtin);
    // Microbatch batches are known only when their build runs: they share what the link's
    // partitions leave of the limit.
    engine.batch_budget = Some(Limit::LinkPartitions.max().saturating_sub(summary.partitions));
    for step in 1..=shared.view.lesson_steps {
        lesson::run_step(&mut engine, step).await?;
    }
    let done = engine.state.actions.len();
    let Some(rest) = shared.actions.strip_prefix(engine.state.actions.as_slice()) else {
        return Err(bad("its lesson steps do not match this Backfill's lesson".into()));
    };
    let notes = engine.replay(rest).await.map_err(|e| match e {
        // Steps are numbered from the link's first action, lesson steps included.
        Error::Replay { step, action, message } => Error::Replay { step: step + done, action, message },
        other => other,
    })?;
    Ok((engine, notes))
}

fn bad(what: String) -> Error {
    Error::Usage(format!("this share link cannot be opened: {what}"))
}

fn month_text(month: NaiveDate) -> String {
    month.format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::sample::{FileSchema, SampleSpec};

    fn session() -> SharedSession {
        let spec = SampleSpec { month: "2023-03".into(), rows: 200_000, seed: 1, schema: FileSchema::Y2023 };
        SharedSession::new(
            vec![
                Action::Sample { spec },
                Action::File { name: "yellow_tripdata_2023-04.parquet".into(), month: "2023-04".into() },
                Action::Materialize { range: "2023-03-04".into(), single_run: false },
            ],
            View { lesson_steps: 2, run: Some(3), selection: Some("2023-03-06..2023-03-04".into()), queries: vec!["select 1".into()], single_run: true },
        )
    }

    #[test]
    fn fragments_round_trip_and_stay_short() {
        let fragment = session().to_fragment().expect("encodes");
        assert!(fragment.starts_with("#s="));
        assert!(fragment.len() < 300, "{} characters", fragment.len());
        assert!(fragment.chars().skip(3).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(SharedSession::from_fragment(&fragment).expect("decodes"), session());
        assert_eq!(session().missing_files(), ["yellow_tripdata_2023-04.parquet"]);
    }

    #[test]
    fn a_damaged_link_says_so() {
        let fragment = session().to_fragment().expect("encodes");
        let cut = &fragment[..fragment.len() / 2];
        let error = SharedSession::from_fragment(cut).expect_err("half a link");
        assert!(error.to_string().starts_with("this share link cannot be opened"), "{error}");
        assert!(SharedSession::from_fragment("#s=!!!").is_err());
    }

    /// A fragment of `json` as Backfill writes one, without checking what it says.
    fn fragment_of(json: &[u8]) -> String {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        let deflated = encoder.write_all(json).and_then(|()| encoder.finish()).unwrap_or_default();
        format!("{FRAGMENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(deflated))
    }

    fn link_of(actions: Vec<Action>) -> String {
        fragment_of(&serde_json::to_vec(&SharedSession::new(actions, View::default())).unwrap_or_default())
    }

    fn sample(month: &str, rows: usize) -> Action {
        Action::Sample { spec: SampleSpec { month: month.into(), rows, seed: 1, schema: FileSchema::Y2023 } }
    }

    fn limit_of(fragment: &str) -> (Limit, String) {
        match SharedSession::from_fragment(fragment) {
            Err(Error::Limit { limit, place, .. }) => (limit, place),
            other => panic!("expected a limit, got {other:?}"),
        }
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_link_byte_limit() {
        // 64 MB of one byte deflates to about 64 KB: the fragment is small, its content is not.
        let bomb = fragment_of(&vec![b' '; 64 << 20]);
        assert!(bomb.len() < 200_000, "{} characters", bomb.len());
        assert_eq!(limit_of(&bomb), (Limit::LinkBytes, "this share link".into()));
        let long = format!("#s={}", "A".repeat(Limit::LinkBytes.max() as usize + 1));
        assert_eq!(limit_of(&long).0, Limit::LinkBytes);
    }

    #[test]
    fn every_count_a_link_carries_is_bounded_before_it_runs() {
        let (limit, place) = limit_of(&link_of(vec![sample("2023-03", 1_000), sample("2023-04", 100_000_000)]));
        assert_eq!((limit, place.as_str()), (Limit::SampleRows, "step 2 of the link (generate 2023-04 (100,000,000 trips))"));
        let late = Action::LateTrips { day: "2023-03-15".into(), rows: 1_000_000, seed: 1 };
        assert_eq!(limit_of(&link_of(vec![sample("2023-03", 1_000), late])), (Limit::LateTrips, "step 2 of the link (1,000,000 late trips for 2023-03-15)".into()));
        let months = ["2023-01", "2023-02", "2023-03"].map(|m| sample(m, 4_000_000)).to_vec();
        assert_eq!(limit_of(&link_of(months)).0, Limit::LinkRows);
        assert_eq!(limit_of(&link_of(vec![Action::Project { name: "builtin:lesson".into() }; 501])).0, Limit::LinkActions);
        let ages = vec![sample("0001-01", 10), sample("9999-12", 10)];
        assert_eq!(limit_of(&link_of(ages)), (Limit::PartitionDays, "this share link's months (0001-01 to 9999-12)".into()));
        let backfills = vec![Action::Materialize { range: "2023-03-01..2023-03-31".into(), single_run: false }; 400];
        assert_eq!(limit_of(&link_of(backfills)).0, Limit::LinkPartitions);
        let files = (0..=Limit::ProjectFiles.max()).map(|i| (format!("models/m{i}.sql"), String::new())).collect();
        assert_eq!(limit_of(&link_of(vec![Action::ProjectFiles { files }])).0, Limit::ProjectFiles);
    }

    #[test]
    fn a_link_that_cannot_be_replayed_is_refused_naming_its_step() {
        let error = SharedSession::from_fragment(&link_of(vec![sample("2023-03", 10), sample("2023-13", 10)])).expect_err("month 13");
        assert_eq!(error.to_string(), "step 2 of the link (generate 2023-13 (10 trips)): `2023-13` is not a month (YYYY-MM)");
        let steps = SharedSession { version: VERSION, actions: Vec::new(), view: View { lesson_steps: 7, ..View::default() } };
        let error = SharedSession::from_fragment(&fragment_of(&serde_json::to_vec(&steps).unwrap_or_default())).expect_err("step 7");
        assert!(error.to_string().contains("lesson step 7"), "{error}");
    }

    #[test]
    fn a_link_summary_counts_what_it_runs_and_asks_above_a_million_rows_or_a_year_of_partitions() {
        let late = Action::LateTrips { day: "2023-03-15".into(), rows: 400, seed: 1 };
        let week = Action::Materialize { range: "2023-03-07..2023-03-01".into(), single_run: true };
        let shared = SharedSession::from_fragment(&link_of(vec![sample("2023-03", 1_000_000), late, week.clone()])).expect("a fine link");
        let summary = shared.check().expect("checked");
        assert_eq!((summary.actions, summary.rows, summary.partitions), (3, 1_000_400, 7));
        assert_eq!(summary.big_work().as_deref(), Some("generates 1,000,400 trips of sample data"));
        let work = |actions: Vec<Action>| SharedSession::new(actions, View::default()).check().map(|s| s.big_work());
        assert_eq!(work(vec![sample("2023-03", 1_000_000), week]), Ok(None));
        let year = |end: &str| Action::Materialize { range: format!("2023-01-01..{end}"), single_run: false };
        assert_eq!(work(vec![sample("2023-03", 1_000), year("2023-12-31"), year("2023-01-01")]), Ok(None));
        assert_eq!(work(vec![sample("2023-03", 1_000), year("2023-12-31"), year("2023-01-02")]), Ok(Some("runs 367 partitions".into())));
    }

    #[test]
    fn a_session_over_the_limits_makes_no_link() {
        let session = SharedSession::new(vec![sample("2023-03", 10); 501], View::default());
        assert!(matches!(session.to_fragment(), Err(Error::Limit { limit: Limit::LinkActions, .. })));
    }
}
