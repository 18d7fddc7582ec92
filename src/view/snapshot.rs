//! The engine as the views see it: a [`Snapshot`] built after every operation (in the
//! browser, by the worker; natively, by tests).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use chrono::NaiveDate;

use crate::course::lesson;
use crate::dbt::table_diff::KeyedRows;
use crate::orchestrate::engine::Engine;
use crate::orchestrate::partitions::PartitionStatus;
use crate::sql::query::cell;
use crate::sql::warehouse::{RelationName, Table};
use crate::view::chart::{self, DailyPoint};
use crate::view::protocol::{PartitionCell, Snapshot};

pub async fn snapshot(engine: &Engine) -> Snapshot {
    let days: Vec<NaiveDate> = engine
        .partitions_definition()
        .map(|d| d.start.iter_days().take_while(|day| *day < d.end).collect())
        .unwrap_or_default();
    let partitions = engine
        .partitions()
        .into_iter()
        .map(|p| {
            let detail = match &p.status {
                PartitionStatus::Missing => "not materialized yet".to_string(),
                PartitionStatus::Materialized { run_id, at } => format!("run {run_id} at {at}"),
                PartitionStatus::Stale { run_id, at } => format!("run {run_id} at {at}; its source rows changed since"),
                PartitionStatus::Failed { run_id, error, .. } => format!("run {run_id} failed: {error}"),
            };
            PartitionCell { day: p.day, status: p.status.name().to_string(), detail }
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
        project: engine.project.files.clone(),
        lineage: engine.lineage(),
        unbuilt_months,
        daily_rows,
        // A saved session whose outcomes no longer read shows no steps done: step 1 starts over.
        lesson: lesson::outcomes(&engine.state).unwrap_or_default(),
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
    let Some(table) = engine.state.warehouse.table(&RelationName::main("stg_trips")) else { return Vec::new() };
    let built = built_months(engine, table).await;
    engine.state.files.iter().map(|f| f.month.clone()).filter(|m| !built.contains(m)).collect()
}

/// The months in a version of stg_trips. Reading them scans every row (50 ms natively for 3M,
/// several times the partition run a snapshot follows), and a table never changes: each
/// version is read once.
async fn built_months(engine: &Engine, table: &Table) -> Rc<BTreeSet<String>> {
    thread_local! {
        static READ: RefCell<Option<(u64, Rc<BTreeSet<String>>)>> = const { RefCell::new(None) };
    }
    if let Some(months) = READ.with_borrow(|read| read.as_ref().filter(|(version, _)| *version == table.version).map(|(_, m)| Rc::clone(m))) {
        return months;
    }
    let Ok(rows) = engine.query("select distinct partition_date from stg_trips").await else { return Rc::default() };
    let months: Rc<BTreeSet<String>> =
        Rc::new(rows.batches.iter().flat_map(|b| (0..b.num_rows()).filter_map(move |r| cell(b, 0, r))).collect());
    READ.with_borrow_mut(|read| *read = Some((table.version, Rc::clone(&months))));
    months
}
