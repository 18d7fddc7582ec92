//! The guided lesson: six steps from a full build of `daily_metrics`, through the brittle
//! max-based filter, to partitions, a backfill and a corrected day. Each step is a list of
//! actions; running one keeps what a learner needs to see: the compiled SQL, what the step's
//! runs did to `daily_metrics` row by row, the partitions that went stale on the way, and how
//! far the table is from the truth (the model rebuilt from scratch).

use serde::{Deserialize, Serialize};

use crate::course::builtin::{LESSON, LESSON_FIRST_VERSION};
use crate::dbt::history::RunStatus;
use crate::dbt::table_diff::TableDiff;
use crate::error::{Error, Result};
use crate::orchestrate::actions::Action;
use crate::orchestrate::engine::Engine;
use crate::orchestrate::partitions::{PartitionStatus, day_text};
use crate::orchestrate::state::State;
use crate::sources::sample::{FileSchema, SampleSpec};

/// The model the lesson is about.
pub const MODEL: &str = "daily_metrics";
/// Trips per generated month: enough for smooth daily figures, quick in a browser.
pub const ROWS_PER_MONTH: usize = 100_000;

pub struct Step {
    pub title: &'static str,
    pub text: &'static str,
    pub actions: Vec<Action>,
}

/// What running a step showed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// 1-based.
    pub step: usize,
    pub run_ids: Vec<u64>,
    pub commands: Vec<String>,
    /// The SQL `daily_metrics` ran in the step's last run.
    pub compiled_sql: String,
    /// Everything the step's runs did to `daily_metrics`.
    pub diff: Option<TableDiff>,
    /// Partitions that were stale at some point during the step, in day order.
    pub stale: Vec<String>,
    /// Rows where `daily_metrics` differs from the truth after the step.
    pub drift: Option<TableDiff>,
}

fn sample(month: &str, seed: u64) -> Action {
    Action::Sample { spec: SampleSpec { month: month.into(), rows: ROWS_PER_MONTH, seed, schema: FileSchema::Y2023 } }
}

fn build(select: &str) -> Action {
    Action::Build { command: Default::default(), select: select.into(), exclude: String::new(), full_refresh: false, vars: Default::default(), event_time_start: None, event_time_end: None }
}

fn materialize(range: &str) -> Action {
    Action::Materialize { range: range.into(), single_run: false }
}

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "A full build",
            text: "daily_metrics as first written: an incremental model whose filter keeps only days after the newest one \
                   already in the table. Its first run has no table yet, so is_incremental() is false and the whole \
                   of March is built.",
            actions: vec![Action::Project { name: LESSON_FIRST_VERSION.into() }, sample("2023-03", 1), build("")],
        },
        Step {
            title: "A new month arrives",
            text: "April's trips are loaded and the project is built again. Now the table exists, so the filter \
                   `date_of_business > (select max(date_of_business) from this)` applies: only the new days are added. \
                   Already a crack: April's file has a few pickups dated 2023-03-31 (and one clock stuck in 2008); \
                   those days are not after the newest day, so their new trips are never counted.",
            actions: vec![sample("2023-04", 2), build("")],
        },
        Step {
            title: "Late trips arrive",
            text: "400 trips for 2023-03-15 and 400 for 2023-04-02 arrive after those days were processed. The same \
                   build runs again, but both days are older than the newest day in the table: the max-based filter \
                   never picks them up. The table now differs from the truth, and no re-run fixes it.",
            actions: vec![
                Action::LateTrips { day: "2023-03-15".into(), rows: 400, seed: 3 },
                Action::LateTrips { day: "2023-04-02".into(), rows: 400, seed: 4 },
                build(""),
            ],
        },
        Step {
            title: "Partition the model",
            text: "The filter becomes `between '{{ var('min_date') }}' and '{{ var('max_date') }}'` and an orchestrator \
                   runs one daily partition at a time, passing the day and the next. Materializing 2023-03-15 picks up \
                   its late trips. Note the `between`: it includes max_date, so the run also rewrites 2023-03-16.",
            actions: vec![Action::Project { name: LESSON.into() }, materialize("2023-03-15")],
        },
        Step {
            title: "Backfill a range",
            text: "A backfill materializes many partitions, one run per day. Backfilling 2023-03-31 to 2023-04-07 \
                   picks up 2023-03-31's stray pickups and 2023-04-02's late trips; the other days are rewritten with \
                   the values they had: a partition run is repeatable. 2008-12-31 is in no partition, so no \
                   partition run ever rewrites it.",
            actions: vec![materialize("2023-03-31..2023-04-07")],
        },
        Step {
            title: "Correct one day",
            text: "The provider corrects 2023-04-05: every fare was $5.00 too high. The corrected trips are loaded \
                   and stg_trips is rebuilt, as the orchestrator does for upstream assets. The partitions that read \
                   that day go stale (2023-04-04 too, because its window includes the next day). Re-materializing \
                   only 2023-04-05 brings that day back to the truth.",
            actions: vec![
                Action::CorrectFares { day: "2023-04-05".into(), amount: 5.0 },
                build("stg_trips"),
                materialize("2023-04-05"),
            ],
        },
    ]
}

/// The lesson's data arriving over time: two months, late trips, a correction.
pub fn data_story() -> Vec<Action> {
    let all: Vec<Action> = steps().into_iter().flat_map(|s| s.actions).collect();
    crate::orchestrate::actions::arrivals(&all)
}

/// Runs step `number` (1-based). Step 1 starts over from an empty state.
pub async fn run_step(engine: &mut Engine, number: usize) -> Result<StepOutcome> {
    let steps = steps();
    let step = steps
        .get(number.wrapping_sub(1))
        .ok_or_else(|| Error::Usage(format!("the lesson has steps 1 to {}, not {number}", steps.len())))?;
    let mut kept = if number == 1 {
        engine.state = State::default();
        Vec::new()
    } else {
        outcomes(&engine.state)?
    };
    if kept.len() + 1 != number {
        let next = kept.len() + 1;
        return Err(Error::Usage(format!("lesson step {number} follows step {}: run step {next} next", number - 1)));
    }
    let runs_before = engine.state.runs.len();
    let mut stale = std::collections::BTreeSet::new();
    for action in &step.actions {
        engine.apply(action).await?;
        let now_stale = engine.partitions().into_iter().filter(|p| matches!(p.status, PartitionStatus::Stale { .. }));
        stale.extend(now_stale.map(|p| day_text(p.day)));
    }
    let runs = &engine.state.runs[runs_before..];
    let model_runs: Vec<_> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Success)
        .filter_map(|r| r.models.iter().find(|m| m.name == MODEL))
        .collect();
    // The step's diff is its runs' diffs in order; none if a run kept none.
    let diffs: Option<Vec<&TableDiff>> = model_runs.iter().map(|run| run.diff.as_ref()).collect();
    let diff = diffs.and_then(|diffs| {
        let (first, rest) = diffs.split_first()?;
        Some(rest.iter().fold((*first).clone(), |total, next| total.then(next)))
    });
    let outcome = StepOutcome {
        step: number,
        run_ids: runs.iter().map(|r| r.id).collect(),
        commands: runs.iter().map(|r| r.command.clone()).collect(),
        compiled_sql: model_runs.last().map(|m| m.compiled_sql.clone()).unwrap_or_default(),
        diff,
        stale: stale.into_iter().collect(),
        drift: engine.drift(MODEL).await.ok().flatten(),
    };
    kept.push(outcome.clone());
    let value = serde_json::to_value(kept).map_err(|e| Error::state(KEPT_UNDER, e))?;
    engine.state.kept.insert(KEPT_UNDER.to_string(), value);
    Ok(outcome)
}

/// The key the lesson's outcomes are kept under in the state (older manifests held them there
/// as a field of their own, so they still read).
const KEPT_UNDER: &str = "lesson";

/// The lesson steps run so far on `state`, in order.
pub fn outcomes(state: &State) -> Result<Vec<StepOutcome>> {
    match state.kept.get(KEPT_UNDER) {
        None => Ok(Vec::new()),
        Some(value) => Vec::deserialize(value).map_err(|e| Error::state(KEPT_UNDER, e)),
    }
}
