//! The engine as the views see it: a [`Snapshot`] built after every operation (in the
//! browser, by the worker; natively, by tests).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;

use chrono::NaiveDate;

use crate::course::lesson;
use crate::dbt::table_diff::KeyedRows;
use crate::orchestrate::engine::Engine;
use crate::orchestrate::partitions::PartitionStatus;
use crate::sql::query::cell;
use crate::sql::warehouse::{Relation, RelationName, Table, Warehouse};
use crate::view::chart::{self, DailyPoint};
use crate::view::protocol::{Daily, PartitionCell, Runs, Snapshot};

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
    let rows = daily_rows(engine).await;
    let all_points = rows.as_ref().map(chart::daily_points).unwrap_or_default();
    let unbuilt_months = unbuilt_months(engine).await;
    let (points, outside): (Vec<DailyPoint>, Vec<DailyPoint>) =
        all_points.into_iter().partition(|p| days.first().is_some_and(|f| p.date >= *f) && days.last().is_some_and(|l| p.date <= *l));
    Snapshot {
        partitions,
        daily: Daily { days, points, outside: outside.len(), rows },
        runs: Runs::all(engine.state.runs.clone()),
        files: engine.state.files.clone(),
        tables: stamps(&engine.state.warehouse),
        project: engine.project.files.clone(),
        lineage: engine.lineage(),
        unbuilt_months,
        // A saved session whose outcomes no longer read shows no steps done: step 1 starts over.
        lesson: lesson::outcomes(&engine.state).unwrap_or_default(),
        actions: engine.state.actions.clone(),
    }
}

/// Each relation's stamp: a table's version (a new table is a new version), a view's a hash of
/// its SQL and the newest table version, since a view may read any table.
fn stamps(warehouse: &Warehouse) -> BTreeMap<String, u64> {
    let newest = warehouse.relations().filter_map(|(_, r)| match r {
        Relation::Table(table) => Some(table.version),
        Relation::View { .. } => None,
    });
    let newest = newest.max().unwrap_or_default();
    let stamp = |relation: &Relation| match relation {
        Relation::Table(table) => table.version,
        Relation::View { sql } => {
            let mut hasher = DefaultHasher::new();
            (sql, newest).hash(&mut hasher);
            hasher.finish()
        }
    };
    warehouse.relations().map(|(name, relation)| (name.to_string(), stamp(relation))).collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::Schema;

    use super::*;

    #[test]
    fn a_views_stamp_moves_with_its_sql_and_with_any_table() {
        let table = || Table::new(Arc::new(Schema::empty()), Vec::new());
        let mut warehouse = Warehouse::default();
        warehouse.put_table(RelationName::main("trips"), table());
        warehouse.put_table(RelationName::main("zones"), table());
        warehouse.put_view(RelationName::main("busy"), "select 1".into());
        let first = stamps(&warehouse);
        assert_eq!(first.keys().collect::<Vec<_>>(), ["main.busy", "main.trips", "main.zones"]);
        assert_eq!(stamps(&warehouse), first, "nothing changed");

        warehouse.put_table(RelationName::main("trips"), table());
        let second = stamps(&warehouse);
        assert_ne!(second["main.trips"], first["main.trips"]);
        assert_eq!(second["main.zones"], first["main.zones"]);
        assert_ne!(second["main.busy"], first["main.busy"], "the view may read trips");

        warehouse.put_view(RelationName::main("busy"), "select 2".into());
        let third = stamps(&warehouse);
        assert_ne!(third["main.busy"], second["main.busy"]);
        assert_eq!(third["main.trips"], second["main.trips"]);
    }
}
