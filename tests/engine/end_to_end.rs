//! The engine end to end on the built-in lesson and a generated month: builds, partitions,
//! their properties, and failures that must leave every table as it was.

use backfill::{LESSON, LESSON_FIRST_VERSION, builtin};
use backfill::ProjectFiles;
use backfill::BuildRequest;
use backfill::Action;
use backfill::Engine;
use backfill::{MemoryStore, State};
use backfill::sample::{self, FileCompression, FileSchema, SampleSpec};
use backfill::query::to_csv;
use backfill::Travel;

fn month_file(rows: usize, seed: u64) -> Vec<u8> {
    let spec = SampleSpec { month: "2023-03".into(), rows, seed, schema: FileSchema::Y2023 };
    let batches = sample::generate(&spec).unwrap_or_else(|e| panic!("{e}"));
    sample::write_parquet(&batches, FileCompression::Snappy).unwrap_or_else(|e| panic!("{e}"))
}

async fn lesson_engine(project: &str) -> Engine {
    let mut engine = Engine::new(builtin(project).unwrap_or_else(|e| panic!("{e}")), State::default(), builtin);
    engine
        .load_trips("yellow_tripdata_2023-03.parquet", month_file(20_000, 1), None)
        .unwrap_or_else(|e| panic!("{e}"));
    engine.build(&BuildRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    engine
}

async fn csv(engine: &Engine, sql: &str) -> String {
    to_csv(&engine.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")))
}

const DAILY: &str = "select * from daily_metrics order by date_of_business";

#[tokio::test]
async fn lesson_builds_with_duckdb_numbers() {
    let engine = lesson_engine(LESSON).await;
    // One row per pickup day, including the few pickups outside March.
    let days = csv(&engine, "select count(*) as n from daily_metrics where date_of_business >= '2023-03-01' and date_of_business < '2023-04-01'").await;
    assert_eq!(days, "n\n31\n");
    // Integer division is a fraction, as in DuckDB.
    let pct = csv(&engine, "select count(*) as n from daily_metrics where pct_over_30_min > 0 and pct_over_30_min < 1").await;
    assert_ne!(pct, "n\n0\n");
    // Surrogate keys hash DuckDB's text of the timestamps.
    let key = csv(&engine, "select md5('2023-03' || '-' || '1' || '-' || '2' || '-' || '2023-03-01 00:05:12' || '-' || '2023-03-01 00:15:00') = md5(cast(coalesce(cast('2023-03' as varchar), '') || '-' || cast(1 as varchar) || '-' || cast(2 as varchar) || '-' || cast(timestamp '2023-03-01 00:05:12' as varchar) || '-' || cast(timestamp '2023-03-01 00:15:00' as varchar) as varchar)) as same").await;
    assert_eq!(key, "same\ntrue\n");
}

#[tokio::test]
async fn a_partition_run_rewrites_its_day_and_the_next() {
    let mut engine = lesson_engine(LESSON).await;
    let records = engine.materialize("2023-03-04", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let model = &records[0].models[0];
    assert_eq!(model.name, "daily_metrics");
    assert!(model.is_incremental);
    assert!(model.compiled_sql.contains("between '2023-03-04' and '2023-03-05'"), "{}", model.compiled_sql);
    assert_eq!((model.rows_inserted, model.rows_deleted), (2, 2));
    assert_eq!(
        records[0].command,
        r#"dbt build --select daily_metrics --vars '{"min_date": "2023-03-04", "max_date": "2023-03-05"}'"#
    );
    let statuses: Vec<(String, &str)> = engine
        .partitions()
        .iter()
        .map(|p| (p.day.to_string(), p.status.name()))
        .filter(|(_, s)| *s != "missing")
        .collect();
    assert_eq!(statuses, vec![("2023-03-04".to_string(), "materialized")]);
}

#[tokio::test]
async fn any_order_and_repetition_of_partitions_equals_a_full_refresh() {
    let mut engine = lesson_engine(LESSON).await;
    let truth = csv(&engine, DAILY).await;
    for range in ["2023-03-10", "2023-03-01..2023-03-03", "2023-03-10", "2023-03-31", "2023-03-15"] {
        engine.materialize(range, false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(csv(&engine, DAILY).await, truth, "after {range}");
    }
    engine.materialize("2023-03-05..2023-03-09", true).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(csv(&engine, DAILY).await, truth);
}

#[tokio::test]
async fn a_backfill_goes_on_past_a_failed_day() {
    let mut engine = lesson_engine(LESSON).await;
    let sql = include_str!("../../src/course/builtin/daily_metrics.sql")
        .replace("select *\nfrom daily_summary", "select *{% if var('min_date', '') == '2023-03-05' %}, no_such_column{% endif %}\nfrom daily_summary");
    engine.change_project(Action::Model { name: "daily_metrics".into(), sql }).unwrap_or_else(|e| panic!("{e}"));
    let backfill = engine.materialize("2023-03-04...2023-03-06, 2023-03-09", false).await.unwrap_or_else(|e| panic!("{e}"));
    let done: Vec<&str> = backfill.runs.iter().map(|r| r.partitions[0].as_str()).collect();
    assert_eq!(done, ["2023-03-04", "2023-03-06", "2023-03-09"]);
    let statuses: Vec<(String, &str)> =
        engine.partitions().iter().map(|p| (p.day.to_string(), p.status.name())).filter(|(_, s)| *s != "missing").collect();
    let expected = [("2023-03-04", "materialized"), ("2023-03-05", "failed"), ("2023-03-06", "materialized"), ("2023-03-09", "materialized")];
    assert_eq!(statuses, expected.map(|(d, s)| (d.to_string(), s)));
    let message = backfill.into_result().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.starts_with("1 of 4 partition runs failed (the other 3 were materialized): 2023-03-05: "), "{message}");
    assert!(message.contains("no_such_column"), "{message}");
    // One run per span of consecutive days when the backfill is a single run.
    let single = engine.materialize("2023-03-09, 2023-03-10..2023-03-12, 2023-03-20", true).await.unwrap_or_else(|e| panic!("{e}"));
    let partitions: Vec<Vec<String>> = single.runs.iter().map(|r| r.partitions.clone()).collect();
    assert_eq!(partitions, [vec!["2023-03-09", "2023-03-10", "2023-03-11", "2023-03-12"], vec!["2023-03-20"]]);
}

#[tokio::test]
async fn corrected_rows_make_partitions_stale_until_rerun() {
    let mut engine = lesson_engine(LESSON).await;
    engine.materialize("2023-03-01..2023-03-31", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    engine
        .load_trips("yellow_tripdata_2023-03.parquet", month_file(20_000, 7), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(engine.partitions().iter().all(|p| p.status.name() == "stale"));
    engine
        .build(&BuildRequest { select: "stg_trips".into(), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    engine.materialize("2023-03-04", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let fresh: Vec<String> = engine
        .partitions()
        .iter()
        .filter(|p| p.status.name() == "materialized")
        .map(|p| p.day.to_string())
        .collect();
    assert_eq!(fresh, vec!["2023-03-04"]);
}

#[tokio::test]
async fn the_max_filter_never_sees_late_trips() {
    let mut engine = lesson_engine(LESSON_FIRST_VERSION).await;
    let before = csv(&engine, DAILY).await;
    // A corrected March arrives; the first version's filter only looks past the max day.
    engine
        .load_trips("yellow_tripdata_2023-03.parquet", month_file(25_000, 1), None)
        .unwrap_or_else(|e| panic!("{e}"));
    engine.build(&BuildRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(csv(&engine, DAILY).await, before);
    engine
        .build(&BuildRequest { full_refresh: true, ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(csv(&engine, DAILY).await, before);
}

#[tokio::test]
async fn a_failed_run_changes_no_table_and_is_recorded() {
    let mut engine = lesson_engine(LESSON).await;
    let before = csv(&engine, "select * from stg_zones order by zone_id").await;
    let daily = csv(&engine, DAILY).await;
    let mut files = engine.project.files.clone();
    files.insert("models/staging/stg_zones.sql", "select zone_id, 1 as changed from {{ source('raw_taxis', 'zones') }}");
    files.insert("models/marts/daily_metrics.sql", "select no_such_column from {{ ref('stg_trips') }}");
    engine.project = files.parse().unwrap_or_else(|e| panic!("{e}"));
    let err = engine.build(&BuildRequest::default()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("models/marts/daily_metrics.sql:1:8: model daily_metrics:"), "{err}");
    assert_eq!(csv(&engine, "select * from stg_zones order by zone_id").await, before);
    assert_eq!(csv(&engine, DAILY).await, daily);
    assert_eq!(engine.state.runs.last().map(|r| r.status), Some(backfill::RunStatus::Failed));
}

#[tokio::test]
async fn merge_rejects_duplicate_keys_like_dbt() {
    let mut engine = lesson_engine(LESSON).await;
    let mut files: ProjectFiles = engine.project.files.clone();
    files.insert(
        "models/marts/by_vendor.sql",
        "{{ config(materialized='incremental', unique_key='vendor_name', incremental_strategy='merge') }}\nselect vendor_name, count(*) as n from {{ ref('stg_trips') }} group by all\n{% if is_incremental() %}union all select vendor_name, 0 from {{ this }}{% endif %}",
    );
    engine.project = files.parse().unwrap_or_else(|e| panic!("{e}"));
    engine.build(&BuildRequest { select: "by_vendor".into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{e}"));
    let before = csv(&engine, "select * from by_vendor order by all").await;
    let err = engine
        .build(&BuildRequest { select: "by_vendor".into(), ..Default::default() })
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("merge needs unique new rows: unique_key (vendor_name) = ("), "{err}");
    assert_eq!(csv(&engine, "select * from by_vendor order by all").await, before);
}

#[tokio::test]
async fn state_round_trips_through_a_store() {
    let mut engine = lesson_engine(LESSON).await;
    engine.materialize("2023-03-04", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let mut store = MemoryStore::default();
    engine.state.save(&mut store).unwrap_or_else(|e| panic!("{e}"));
    let reloaded = Engine::new(
        builtin(LESSON).unwrap_or_else(|e| panic!("{e}")),
        State::load(&store).unwrap_or_else(|e| panic!("{e}")), builtin,
    );
    assert_eq!(csv(&reloaded, DAILY).await, csv(&engine, DAILY).await);
    assert_eq!(reloaded.partitions(), engine.partitions());
    assert_eq!(reloaded.state.runs, engine.state.runs);
}

#[tokio::test]
async fn queries_speak_duckdb() {
    let engine = lesson_engine(LESSON).await;
    // ORDER BY ALL over aggregates: every output column, left to right, descending here.
    let ordered = csv(
        &engine,
        "select vendor_name, count(*) filter (where duration > 30) > 0 as has_long, count(*) as n from stg_trips group by all order by all desc",
    )
    .await;
    let rows: Vec<&str> = ordered.lines().skip(1).collect();
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(rows, sorted);
    assert_eq!(rows.len(), 3, "{ordered}");
    // A select alias used by a later item, as DuckDB resolves it.
    let lateral = csv(&engine, "select 2 as two, two * 3 as six order by all").await;
    assert_eq!(lateral, "two,six\n2,6\n");
}

/// What the page's worker publishes after an operation: the calendar, the chart's points and the
/// project, as the views read them (and they survive the trip to the page as JSON).
#[tokio::test]
async fn the_snapshot_shows_the_partitions_chart_and_project() {
    let mut engine = lesson_engine(LESSON).await;
    let built = backfill::snapshot(&engine).await;
    engine.materialize("2023-03-04", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let snapshot = backfill::snapshot(&engine).await;
    assert_eq!(snapshot.daily.days.len(), 31);
    let statuses: Vec<&str> = snapshot.partitions.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "materialized").count(), 1, "{statuses:?}");
    assert_eq!(statuses[3], "materialized");
    assert_eq!(snapshot.daily.points.len(), 31, "one chart point per day of March");
    let counted: i64 = snapshot.daily.points.iter().map(|p| p.trip_count).sum();
    let in_march = csv(&engine, "select sum(trip_count) as n from daily_metrics where date_of_business >= '2023-03-01' and date_of_business < '2023-04-01'").await;
    assert_eq!(format!("n\n{counted}\n"), in_march);
    assert_eq!(snapshot.project, engine.project.files);
    assert!(snapshot.unbuilt_months.is_empty());
    // A view shows a relation again only when its stamp moved: the partition run rewrote
    // daily_metrics alone.
    let (before, after) = (&built.tables, &snapshot.tables);
    assert_ne!(before.get("main.daily_metrics"), after.get("main.daily_metrics"));
    for unchanged in ["main.trips", "main.stg_trips", "main.location_metrics"] {
        assert!(after.contains_key(unchanged), "{unchanged} is in {after:?}");
        assert_eq!(before.get(unchanged), after.get(unchanged), "{unchanged}");
    }
    let event = backfill::Event::Snapshot(Box::new(snapshot.clone()));
    let back = backfill::Event::from_json(&event.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let backfill::Event::Snapshot(back) = back else { panic!("not a snapshot") };
    assert_eq!(back.partitions, snapshot.partitions);
    assert_eq!(back.runs, snapshot.runs);
}

/// The months stg_trips holds are read once per version of the table: a month loaded after the
/// build is unbuilt until stg_trips is rebuilt, then built.
#[tokio::test]
async fn the_snapshot_follows_the_months_each_version_of_stg_trips_holds() {
    let mut engine = lesson_engine(LESSON).await;
    assert!(backfill::snapshot(&engine).await.unbuilt_months.is_empty());
    let april = SampleSpec { month: "2023-04".into(), rows: 500, seed: 2, schema: FileSchema::Y2023 };
    engine.load_sample(&april).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(backfill::snapshot(&engine).await.unbuilt_months, ["2023-04"]);
    engine.build(&BuildRequest { select: "stg_trips".into(), ..BuildRequest::default() }).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(backfill::snapshot(&engine).await.unbuilt_months.is_empty());
}

/// The chart's slider: each run that changed daily_metrics is a stop; on an earlier one the
/// chart shows the table as it was then (here, before March was regenerated and one day re-run).
#[tokio::test]
async fn the_chart_travels_back_to_daily_metrics_after_an_earlier_run() {
    let mut engine = lesson_engine(LESSON).await;
    engine
        .load_trips("yellow_tripdata_2023-03.parquet", month_file(10_000, 7), None)
        .unwrap_or_else(|e| panic!("{e}"));
    engine.build(&BuildRequest { select: "stg_trips".into(), ..Default::default() }).await.unwrap_or_else(|e| panic!("{e}"));
    engine.materialize("2023-03-04", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let snapshot = backfill::snapshot(&engine).await;
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2023, 3, d).unwrap_or_default();
    let count_on = |travel: &Travel, d: u32| travel.points.iter().find(|p| p.date == day(d)).map(|p| p.trip_count);

    let now = Travel::of(&snapshot.daily, &snapshot.runs.runs, None);
    assert_eq!(now.stops.len(), 2, "the build and the partition run changed daily_metrics");
    assert!(!now.travelling() && now.rows.is_none());
    assert_eq!(now.points, snapshot.daily.points);
    assert_eq!(now.touched, [day(4), day(5)].into(), "a partition run rewrites its day and the next");
    assert!(now.label().starts_with(&format!("Now: after run {}", now.stops[1].id)), "{}", now.label());

    let first = now.stops[0].id;
    let then = Travel::of(&snapshot.daily, &snapshot.runs.runs, now.choice(0));
    assert_eq!(now.choice(0), Some(first));
    assert_eq!(now.choice(1), None, "the last stop is now, and follows new runs");
    assert!(then.travelling());
    assert!(then.label().starts_with(&format!("As it was after run {first}")), "{}", then.label());
    assert!((1..=31).all(|d| then.touched.contains(&day(d))), "the first build wrote every day of March");
    let built = lesson_engine(LESSON).await;
    let built = backfill::snapshot(&built).await;
    assert_eq!(count_on(&then, 4), built.daily.points.iter().find(|p| p.date == day(4)).map(|p| p.trip_count));
    assert_ne!(count_on(&then, 4), count_on(&now, 4));
    assert_eq!(count_on(&then, 10), count_on(&now, 10), "a day no later run touched is as it is now");
}
