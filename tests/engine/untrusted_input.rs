//! The engine on input a stranger wrote (a share link, a dropped project, a trip file): each
//! case fails with a typed error instead of panicking, hanging or exhausting memory, nothing
//! written in SQL reaches the file system, and a failed operation leaves the state as it was.

use std::collections::BTreeMap;
use std::time::Duration;

use backfill::{LESSON, LESSON_MICROBATCH, builtin};
use backfill::{BuildRequest, EventTimeRange};
use backfill::Error;
use backfill::Limit;
use backfill::Action;
use backfill::Engine;
use backfill::State;
use backfill::sample::{self, FileCompression, FileSchema, SampleSpec};
use backfill::{Relation, RelationName};

fn spec(month: &str, rows: usize) -> SampleSpec {
    SampleSpec { month: month.into(), rows, seed: 3, schema: FileSchema::Y2023 }
}

fn engine_with(project: &str, rows: usize) -> Engine {
    let mut engine = Engine::new(builtin(project).unwrap_or_else(|e| panic!("{e}")), State::default(), builtin);
    engine.load_sample(&spec("2023-03", rows)).unwrap_or_else(|e| panic!("{e}"));
    engine
}

async fn built(project: &str) -> Engine {
    let mut engine = engine_with(project, 2_000);
    engine.build(&BuildRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    engine
}

/// Everything an operation could change: each table's version (a new table is a new
/// version), views, files, partitions, fingerprints, actions and the number of runs.
fn state_of(engine: &Engine) -> String {
    let relations: Vec<String> = engine
        .state
        .warehouse
        .relations()
        .map(|(name, relation)| match relation {
            Relation::Table(table) => format!("{name}@{}", table.version),
            Relation::View { sql } => format!("{name}={sql}"),
        })
        .collect();
    let state = &engine.state;
    format!(
        "{relations:?}\n{:?}\n{:?}\n{:?}\n{:?}\nruns {}",
        state.files, state.partitions, state.fingerprints, state.actions, state.runs.len()
    )
}

/// Runs `work` on a thread of its own, failing the test if it does not finish in `seconds`.
fn within<T: Send + 'static>(seconds: u64, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver.recv_timeout(Duration::from_secs(seconds)).unwrap_or_else(|_| panic!("did not finish in {seconds} s"))
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(future)
}

fn limit_of(error: &Error) -> Option<Limit> {
    match error {
        Error::Limit { limit, .. } => Some(*limit),
        _ => None,
    }
}

#[tokio::test]
async fn a_model_named_like_a_raw_or_source_table_is_refused_and_changes_nothing() {
    let mut engine = built(LESSON).await;
    let before = state_of(&engine);
    for (path, text) in [
        ("models/trips.sql", "select 1 as x"),
        ("models/marts/ZONES.sql", "select 1 as x"),
        ("seeds/trips.csv", "x\n1\n"),
    ] {
        let mut files = engine.project.files.clone();
        files.insert(path, text);
        let error = engine.change_project(Action::ProjectFiles { files: files.0.clone() }).expect_err(path);
        let Error::Project { file, message } = &error else { panic!("{path}: {error}") };
        assert_eq!(file, path);
        assert!(message.contains("would replace the raw table main."), "{message}");
        assert_eq!(state_of(&engine), before, "{path}");
        // A project that bypasses the edit (the CLI reads a folder) is refused by the run.
        let sneaked = files.parse().unwrap_or_else(|e| panic!("{e}"));
        let project = std::mem::replace(&mut engine.project, sneaked);
        let error = engine.build(&BuildRequest::default()).await.expect_err(path);
        assert!(matches!(&error, Error::Project { file, .. } if file == path), "{error}");
        engine.project = project;
        engine.state.runs.pop();
        assert_eq!(state_of(&engine), before, "{path}");
    }
}

/// A state saved before source relations were reserved can hold a model's table as `trips`:
/// every operation that reads the raw trips fails with an error naming them, none panics.
#[tokio::test]
async fn raw_trips_of_another_type_are_an_error_not_a_panic() {
    let mut engine = built(LESSON).await;
    let daily = engine.state.warehouse.table(&RelationName::main("daily_metrics")).cloned();
    let Some(daily) = daily else { panic!("daily_metrics is built") };
    engine.state.warehouse.put_table(RelationName::main("trips"), daily);
    let before = state_of(&engine);
    let load = engine.load_sample(&spec("2023-04", 100)).expect_err("trips are not trips");
    assert!(load.to_string().contains("the raw trips: no column partition_date of the type Backfill writes"), "{load}");
    let day = chrono::NaiveDate::from_ymd_opt(2023, 3, 4).unwrap_or_default();
    assert!(engine.add_late_trips(day, 10, 1).is_err());
    assert!(engine.correct_fares(day, 1.0).is_err());
    assert_eq!(state_of(&engine), before);
    // The partition fingerprints skip what they cannot read.
    let trips = engine.state.warehouse.table(&RelationName::main("trips"));
    assert_eq!(backfill::DayFingerprints::of(trips, backfill::EVENT_TIME), Default::default());
}

#[tokio::test]
async fn models_and_queries_cannot_create_copy_or_set_anything() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = dir.path().join("planted.sh");
    let path = target.display().to_string();
    let writes = [
        format!("copy (select '#!/bin/sh' as line) to '{path}' stored as csv"),
        format!("create external table planted (line varchar) stored as csv location '{path}'"),
        "create table planted as select 1 as x".to_string(),
        "create view planted as select 1 as x".to_string(),
        "insert into trips select * from trips".to_string(),
        "drop table trips".to_string(),
        "set datafusion.execution.target_partitions = 1".to_string(),
        "explain select 1".to_string(),
        format!("select 1; copy (select 1) to '{path}'"),
    ];
    let mut engine = built(LESSON).await;
    let before = state_of(&engine);
    for sql in &writes {
        let error = engine.query(sql).await.expect_err(sql);
        assert!(matches!(error, Error::Query(_)), "{sql}: {error}");
        assert!(!target.exists(), "{sql} wrote {path}");
    }
    // Reading a file by its name is not a query over the warehouse either.
    assert!(engine.query("select * from '/etc/hostname'").await.is_err());
    assert_eq!(state_of(&engine), before);

    let mut files = engine.project.files.clone();
    files.insert("models/marts/planted.sql", &writes[0]);
    engine.change_project(Action::ProjectFiles { files: files.0.clone() }).unwrap_or_else(|e| panic!("{e}"));
    let tables = state_of(&engine);
    let request = BuildRequest { select: "planted".into(), ..BuildRequest::default() };
    let error = engine.build(&request).await.expect_err("a model that writes a file");
    let Error::Sql { file, message, .. } = &error else { panic!("{error}") };
    assert_eq!(file, "models/marts/planted.sql");
    assert!(message.starts_with("only a query (SELECT, or WITH … SELECT) can run here"), "{message}");
    assert!(!target.exists());
    engine.state.runs.pop();
    assert_eq!(state_of(&engine), tables);
}

#[tokio::test]
async fn a_five_thousand_term_expression_is_refused_by_the_depth_limit() {
    let engine = built(LESSON).await;
    let terms = vec!["1"; 5_000].join(" + ");
    let error = engine.query(&format!("select {terms} as n")).await.expect_err("too deep");
    assert_eq!(limit_of(&error), Some(Limit::SqlDepth), "{error}");
    assert!(error.to_string().starts_with("query: 5,000 levels is over Backfill's limit"), "{error}");
    let unions = vec!["select 1 as n"; 5_000].join(" union all ");
    assert_eq!(limit_of(&engine.query(&unions).await.expect_err("too deep")), Some(Limit::SqlDepth));
    let nested = format!("select {}1{} as n", "(".repeat(5_000), ")".repeat(5_000));
    assert_eq!(limit_of(&engine.query(&nested).await.expect_err("too deep")), Some(Limit::SqlDepth));
}

/// What the limit lets through must plan and run on a small stack (the browser's is about
/// 1 MiB): a chain, nested parentheses and a union as deep as the limit allows.
#[test]
fn statements_at_the_depth_limit_run_in_a_one_mebibyte_stack() {
    let depth = Limit::SqlDepth.max() as usize;
    let statements = [
        format!("select {} as n", vec!["1"; depth].join(" + ")),
        format!("select {}1{} as n", "(".repeat(depth - 2), ")".repeat(depth - 2)),
        vec!["select 1 as n"; depth].join(" union all "),
        format!("select count(*) as n from trips where {}", vec!["vendor_id = 1"; depth / 2].join(" or ")),
    ];
    let engine = engine_with(LESSON, 200);
    let state = engine.state.clone();
    let outcome = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let engine = Engine::new(builtin(LESSON).unwrap_or_else(|e| panic!("{e}")), state, builtin);
            statements.iter().map(|sql| block_on(engine.query(sql)).map(|t| t.num_rows()).map_err(|e| e.to_string())).collect::<Vec<_>>()
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .join();
    let rows = outcome.unwrap_or_else(|_| panic!("a statement within the limit overflowed a 1 MiB stack"));
    assert_eq!(rows, [Ok(1), Ok(1), Ok(depth), Ok(1)]);
}

#[tokio::test]
async fn chained_select_aliases_are_refused_before_they_blow_up() {
    let engine = built(LESSON).await;
    let mut items = vec!["1 as x0".to_string()];
    items.extend((1..=26).map(|i| format!("x{p} + x{p} as x{i}", p = i - 1)));
    let sql = format!("select {}", items.join(", "));
    let error = within(60, move || block_on(async move { engine.query(&sql).await })).expect_err("2^26 copies");
    assert_eq!(limit_of(&error), Some(Limit::RenderedBytes), "{error}");
}

/// One test, so that the two queries that fill the pool never run at once. 400 million
/// 8-byte values are 3.2 GB, over the 2 GiB limit.
#[tokio::test]
async fn queries_that_hold_more_than_the_pool_fail_with_the_memory_limit() {
    let engine = built(LESSON).await;
    for sql in [
        // A descending rank sorts every row before the first comes out.
        "select max(r) as n from (select row_number() over (order by v desc) as r from generate_series(1, 400000000) as t(v)) s",
        // The pool bounds what operators hold; the rows a query returns are bounded too.
        "select v from generate_series(1, 400000000) as t(v)",
    ] {
        let error = engine.query(sql).await.expect_err("more than the pool holds");
        assert_eq!(limit_of(&error), Some(Limit::QueryMemory), "{sql}: {error}");
    }
}

#[tokio::test]
async fn a_model_whose_first_line_selects_a_blank_column_fails_without_hanging() {
    let mut engine = built(LESSON).await;
    let mut files = engine.project.files.clone();
    files.insert("models/marts/blank.sql", "select \" x\"\nfrom {{ ref('stg_zones') }}");
    engine.change_project(Action::ProjectFiles { files: files.0.clone() }).unwrap_or_else(|e| panic!("{e}"));
    let request = BuildRequest { select: "blank".into(), ..BuildRequest::default() };
    let error = within(60, move || block_on(async move { engine.build(&request).await })).expect_err("no such column");
    let Error::Sql { file, at, .. } = &error else { panic!("{error}") };
    assert_eq!((file.as_str(), *at), ("models/marts/blank.sql", Some((1, 9))), "{error}");
}

#[tokio::test]
async fn microbatch_event_times_at_the_calendar_ends_fail_cleanly() {
    let mut engine = engine_with(LESSON_MICROBATCH, 2_000);
    let at = |text: &str| backfill::parse_time(text);
    let two_days = EventTimeRange { start: at("2023-03-01"), end: at("2023-03-03") };
    engine.build(&BuildRequest { event_time: two_days, ..BuildRequest::default() }).await.unwrap_or_else(|e| panic!("{e}"));
    let before = state_of(&engine);
    let last = chrono::NaiveDateTime::MAX;
    let first = chrono::NaiveDateTime::MIN;
    for event_time in [
        EventTimeRange { start: Some(first), end: Some(last) },
        EventTimeRange { start: None, end: Some(last) },
        // An incremental run looks back from its end: before the first date there is nothing.
        EventTimeRange { start: None, end: Some(first) },
    ] {
        let request = BuildRequest { select: "daily_metrics".into(), event_time, ..BuildRequest::default() };
        let error = engine.build(&request).await.expect_err("no such batches");
        assert!(matches!(error, Error::Project { .. } | Error::Limit { limit: Limit::MicrobatchBatches, .. }), "{error}");
        engine.state.runs.pop();
        assert_eq!(state_of(&engine), before);
    }
}

#[test]
fn a_trip_month_that_widens_the_partitions_past_the_limit_is_refused() {
    let mut engine = engine_with(LESSON, 50);
    engine.load_sample(&spec("0001-01", 10)).expect_err("years 0001 to 2023");
    engine.load_sample(&spec("2014-01", 10)).unwrap_or_else(|e| panic!("ten years are fine: {e}"));
    let before = state_of(&engine);
    let days = engine.partitions().len();
    let error = engine.load_sample(&spec("9999-12", 10)).expect_err("years 2014 to 9999");
    let Error::Limit { limit, value, .. } = &error else { panic!("{error}") };
    assert_eq!((*limit, *value), (Limit::PartitionDays, Some(2_916_826)), "{error}");
    assert_eq!(state_of(&engine), before);
    assert_eq!(engine.partitions().len(), days);
    assert_eq!(days as u64, engine.partitions_definition().map_or(0, |d| d.day_count()));
}

/// Every one of a sample of single-byte mutants of a small trip file goes through ingest: none
/// panics past it, and one that fails leaves the state as it was.
#[test]
fn mutated_parquet_trip_files_never_panic_and_failures_change_nothing() {
    let batches = sample::generate(&spec("2023-03", 40)).unwrap_or_else(|e| panic!("{e}"));
    let project = builtin(LESSON).unwrap_or_else(|e| panic!("{e}"));
    let mut engine = Engine::new(project.clone(), State::default(), builtin);
    engine.load_sample(&spec("2023-04", 30)).unwrap_or_else(|e| panic!("{e}"));
    let base = engine.state.clone();
    let before = state_of(&engine);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for compression in [FileCompression::None, FileCompression::Snappy, FileCompression::Zstd] {
        let file = sample::write_parquet(&batches, compression).unwrap_or_else(|e| panic!("{e}"));
        // About 500 mutants per codec: every byte of a small file is touched by one of them.
        let step = (file.len() / 500).max(1);
        for (n, at) in (0..file.len()).step_by(step).enumerate() {
            let mut mutant = file.clone();
            let flip = [0xff, 0x01, 0x80, 0x7f][n % 4];
            mutant[at] ^= flip;
            let mut engine = Engine::new(project.clone(), base.clone(), builtin);
            let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.load_trips("yellow_tripdata_2023-03.parquet", mutant, None).map(|_| ())
            }));
            match loaded {
                Err(_) => panic!("byte {at} ^ {flip:#x} of a {compression:?} file panicked past ingest"),
                Ok(Ok(())) => *outcomes.entry("loaded").or_default() += 1,
                Ok(Err(error)) => {
                    assert!(matches!(error, Error::Ingest { .. }), "byte {at}: {error}");
                    assert_eq!(state_of(&engine), before, "byte {at} ^ {flip:#x}");
                    *outcomes.entry("refused").or_default() += 1;
                }
            }
        }
    }
    assert!(outcomes.values().sum::<usize>() >= 1_400, "{outcomes:?}");
    assert!(outcomes.get("refused").is_some_and(|n| *n > 100), "{outcomes:?}");
}

#[test]
fn a_trip_file_over_the_size_limit_is_refused_unread() {
    let mut engine = engine_with(LESSON, 50);
    let before = state_of(&engine);
    let size = Limit::TripFileBytes.max() as usize + 1;
    let huge = vec![0u8; size];
    let error = engine.load_trips("yellow_tripdata_2023-05.parquet", huge, None).expect_err("too big");
    assert_eq!(limit_of(&error), Some(Limit::TripFileBytes), "{error}");
    assert_eq!(state_of(&engine), before);
}
