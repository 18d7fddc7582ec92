//! Strategies side by side: the same arriving data (months, late trips, corrections) run
//! through four versions of `daily_metrics`, each updated the way it would be in production
//! after every arrival, then compared day by day with the truth.
//!
//! The raw tables and the staging models are built once per arrival and shared; only
//! `daily_metrics` differs between the variants.

use chrono::{Duration, NaiveDate};

use crate::course::builtin::{LESSON, LESSON_FIRST_VERSION, LESSON_MICROBATCH, builtin};
use crate::course::lesson::MODEL;
use crate::dbt::request::{BuildRequest, EventTimeRange};
use crate::dbt::table_diff::{self, KeyedRows, TableDiff};
use crate::error::{Error, Result};
use crate::orchestrate::actions::Action;
use crate::orchestrate::engine::Engine;
use crate::orchestrate::partitions::{PartitionStatus, selection_text};
use crate::orchestrate::state::State;
use crate::sql::warehouse::{Relation, RelationName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Strategy {
    /// The lesson's first version: `dbt build` after each arrival.
    MaxFilter,
    /// The partitioned model: the orchestrator materializes every missing or stale partition.
    Partitioned,
    /// dbt's microbatch: a new month's batches (and, by lookback, the day before) when it
    /// arrives; otherwise a daily schedule (the newest day and the day before).
    Microbatch,
    /// A full refresh after each arrival: the truth the others are measured against.
    FullRefresh,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [Strategy::MaxFilter, Strategy::Partitioned, Strategy::Microbatch, Strategy::FullRefresh];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::MaxFilter => "max-filter",
            Strategy::Partitioned => "partitioned",
            Strategy::Microbatch => "microbatch",
            Strategy::FullRefresh => "full-refresh",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Strategy::MaxFilter => "incremental, `> max(date_of_business)`; `dbt build` after each arrival",
            Strategy::Partitioned => "daily partitions; every missing or stale partition materialized after each arrival",
            Strategy::Microbatch => "microbatch by day, lookback 1: a new month's batches and the day before; else the newest two days",
            Strategy::FullRefresh => "rebuilt from scratch after each arrival: the truth",
        }
    }

    fn project(self) -> &'static str {
        match self {
            Strategy::MaxFilter | Strategy::FullRefresh => LESSON_FIRST_VERSION,
            Strategy::Partitioned => LESSON,
            Strategy::Microbatch => LESSON_MICROBATCH,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VariantOutcome {
    pub strategy: Strategy,
    /// dbt runs this variant needed.
    pub runs: usize,
    pub rows: Option<KeyedRows>,
    /// Where it differs from the truth (`old` is the variant's row, `new` the truth's).
    pub drift: Option<TableDiff>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    pub truth: Option<KeyedRows>,
    pub variants: Vec<VariantOutcome>,
    /// The arrivals, described, in order.
    pub arrivals: Vec<String>,
    /// Arrivals that could not be replayed (files from disk).
    pub skipped: Vec<String>,
}

/// Runs `arrivals` through every strategy. `progress` hears (arrivals done, arrivals in all)
/// and is awaited, so the page can repaint between arrivals.
pub async fn compare(arrivals: &[Action], mut progress: impl AsyncFnMut(usize, usize)) -> Result<Comparison> {
    let mut base = Engine::new(builtin(LESSON)?, State::default(), builtin);
    let mut variants = Vec::new();
    for strategy in Strategy::ALL {
        variants.push((strategy, Engine::new(builtin(strategy.project())?, State::default(), builtin)));
    }
    let (mut described, mut skipped) = (Vec::new(), Vec::new());
    for (index, arrival) in arrivals.iter().enumerate() {
        progress(index, arrivals.len()).await;
        if let Some(note) = base.apply(arrival).await? {
            skipped.push(note);
            continue;
        }
        described.push(arrival.describe());
        let upstream = BuildRequest { select: "stg_trips stg_zones".into(), ..BuildRequest::default() };
        base.build(&upstream).await?;
        for (strategy, engine) in &mut variants {
            share_upstream(&base, engine);
            update(*strategy, engine, arrival).await?;
        }
    }
    let key = ["date_of_business".to_string()];
    let model_table = |e: &Engine| e.state.warehouse.table(&RelationName::main(MODEL)).cloned();
    let truth_table = variants.iter().find(|(s, _)| *s == Strategy::FullRefresh).and_then(|(_, e)| model_table(e));
    let outcomes = variants
        .iter()
        .map(|(strategy, engine)| {
            let table = model_table(engine);
            let drift = match (&table, &truth_table) {
                (table, Some(truth)) => table_diff::diff(table.as_ref(), None, truth, &key),
                _ => None,
            };
            VariantOutcome {
                strategy: *strategy,
                runs: engine.state.runs.len(),
                rows: table.and_then(|t| KeyedRows::of(&t, &key)),
                drift,
            }
        })
        .collect();
    Ok(Comparison { truth: truth_table.and_then(|t| KeyedRows::of(&t, &key)), variants: outcomes, arrivals: described, skipped })
}

/// Gives `engine` the base's raw and staging relations, loaded files and fingerprints; its own
/// `daily_metrics` and partition ledger stay.
fn share_upstream(base: &Engine, engine: &mut Engine) {
    let model = RelationName::main(MODEL);
    for (name, relation) in base.state.warehouse.relations().filter(|(name, _)| **name != model) {
        match relation {
            Relation::Table(table) => engine.state.warehouse.put_table(name.clone(), table.clone()),
            Relation::View { sql } => engine.state.warehouse.put_view(name.clone(), sql.clone()),
        }
    }
    engine.state.files = base.state.files.clone();
    engine.state.fingerprints = base.state.fingerprints.clone();
}

async fn update(strategy: Strategy, engine: &mut Engine, arrival: &Action) -> Result<()> {
    let model = BuildRequest { select: MODEL.into(), ..BuildRequest::default() };
    match strategy {
        Strategy::MaxFilter => drop(engine.build(&model).await?),
        Strategy::FullRefresh => drop(engine.build(&BuildRequest { full_refresh: true, ..model }).await?),
        Strategy::Partitioned => {
            let due: Vec<NaiveDate> = engine
                .partitions()
                .into_iter()
                .filter(|p| matches!(p.status, PartitionStatus::Missing | PartitionStatus::Stale { .. }))
                .map(|p| p.day)
                .collect();
            if !due.is_empty() {
                engine.materialize(&selection_text(&due), true).await?.into_result()?;
            }
        }
        Strategy::Microbatch => {
            let (start, end) = match arrival {
                Action::Sample { spec } => {
                    let start = crate::sources::ingest::parse_month(&spec.month).map_err(Error::Usage)?;
                    (start - Duration::days(1), start.checked_add_months(chrono::Months::new(1)).unwrap_or(start))
                }
                _ => {
                    let newest = engine.partitions_definition().map(|d| d.end - Duration::days(1));
                    let newest = newest.ok_or_else(|| Error::Usage("no partitions to schedule".into()))?;
                    (newest - Duration::days(1), newest + Duration::days(1))
                }
            };
            let event_time = EventTimeRange { start: start.and_hms_opt(0, 0, 0), end: end.and_hms_opt(0, 0, 0) };
            drop(engine.build(&BuildRequest { event_time, ..model }).await?);
        }
    }
    Ok(())
}

