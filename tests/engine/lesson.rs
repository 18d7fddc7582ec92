//! The guided lesson end to end, and replaying a session's actions (what a share link does).

use backfill::{LESSON, builtin};
use backfill::compare::{self, Strategy};
use backfill::lesson::{self, StepOutcome};
use backfill::share::{self, SharedSession, View};
use backfill::time_travel::rows_after;
use backfill::BuildRequest;
use backfill::{KeyedRows, TableDiff};
use backfill::Engine;
use backfill::State;
use backfill::query::to_csv;
use backfill::RelationName;
use backfill::daily_points;

fn engine() -> Engine {
    Engine::new(builtin(LESSON).unwrap_or_else(|e| panic!("{e}")), State::default(), builtin)
}

async fn walk(engine: &mut Engine) -> Vec<StepOutcome> {
    let mut outcomes = Vec::new();
    for step in 1..=lesson::steps().len() {
        outcomes.push(lesson::run_step(engine, step).await.unwrap_or_else(|e| panic!("step {step}: {e}")));
    }
    outcomes
}

async fn csv(engine: &Engine, sql: &str) -> String {
    to_csv(&engine.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")))
}

fn days(rows: &[Vec<serde_json::Value>]) -> Vec<String> {
    rows.iter().map(|r| r[0].as_str().unwrap_or_default().get(..10).unwrap_or_default().to_string()).collect()
}

fn diff(outcome: &StepOutcome) -> &TableDiff {
    outcome.diff.as_ref().unwrap_or_else(|| panic!("step {} kept no diff", outcome.step))
}

fn drift_days(outcome: &StepOutcome) -> Vec<String> {
    let drift = outcome.drift.as_ref().unwrap_or_else(|| panic!("step {} has no drift", outcome.step));
    let changed: Vec<Vec<serde_json::Value>> = drift.changed.iter().map(|c| c.new.clone()).collect();
    days(&changed)
}

fn column(diff: &TableDiff, name: &str) -> usize {
    diff.columns.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"))
}

#[tokio::test]
async fn the_six_steps_show_why_partitions_beat_the_max_filter() {
    let mut engine = engine();
    let steps = walk(&mut engine).await;

    // 1. A full build: every March day added (and the few pickups dated the day before).
    let first = diff(&steps[0]);
    assert_eq!(days(&first.added).iter().filter(|d| d.starts_with("2023-03")).count(), 31);
    assert!(first.changed.is_empty() && first.removed.is_empty());
    assert!(!steps[0].compiled_sql.contains("max(date_of_business)"), "a first run is not incremental");

    // 2. A new month: only days after the newest one are added.
    let second = diff(&steps[1]);
    assert_eq!(days(&second.added), (1..=30).map(|d| format!("2023-04-{d:02}")).collect::<Vec<_>>());
    assert!(second.changed.is_empty());
    // April's file has pickups dated March 31 (and 2008): the max filter skips them.
    assert_eq!(drift_days(&steps[1]), ["2008-12-31", "2023-03-31"]);
    assert!(steps[1].compiled_sql.contains("where date_of_business > (select max(date_of_business) from"));

    // 3. Late trips: the max filter adds nothing, and two days drift from the truth.
    assert!(diff(&steps[2]).is_empty(), "{:?}", steps[2].diff);
    assert_eq!(drift_days(&steps[2]), ["2008-12-31", "2023-03-15", "2023-03-31", "2023-04-02"]);

    // 4. One partition: 03-15 changes by its late trips, 03-16 is rewritten unchanged.
    let fourth = diff(&steps[3]);
    assert_eq!(fourth.changed.len(), 1);
    let count = column(fourth, "trip_count");
    let (old, new) = (&fourth.changed[0].old, &fourth.changed[0].new);
    assert_eq!(days(std::slice::from_ref(new)), ["2023-03-15"]);
    assert_eq!(new[count].as_i64().unwrap_or_default() - old[count].as_i64().unwrap_or_default(), 400);
    assert_eq!(days(&fourth.rewritten), ["2023-03-16"]);
    assert!(steps[3].compiled_sql.contains("between '2023-03-15' and '2023-03-16'"));
    assert_eq!(drift_days(&steps[3]), ["2008-12-31", "2023-03-31", "2023-04-02"]);

    // 5. A backfill of 03-31..04-07: 03-31 and 04-02 fixed, the others rewritten unchanged;
    // 2008-12-31 is in no partition.
    let fifth = diff(&steps[4]);
    assert_eq!(days(&fifth.changed.iter().map(|c| c.new.clone()).collect::<Vec<_>>()), ["2023-03-31", "2023-04-02"]);
    assert_eq!(days(&fifth.rewritten), ["2023-04-01", "2023-04-03", "2023-04-04", "2023-04-05", "2023-04-06", "2023-04-07", "2023-04-08"]);
    assert_eq!(steps[4].run_ids.len(), 8);
    assert_eq!(drift_days(&steps[4]), ["2008-12-31"]);

    // 6. A corrected day: its partition and the one before go stale; one run fixes the table.
    let sixth = diff(&steps[5]);
    assert_eq!(steps[5].stale, ["2023-04-04", "2023-04-05"]);
    assert_eq!(sixth.changed.len(), 1);
    let changed = &sixth.changed[0];
    assert_eq!(days(std::slice::from_ref(&changed.new)), ["2023-04-05"]);
    let changed_columns: Vec<&str> = TableDiff::changed_columns(changed).iter().map(|&i| sixth.columns[i].as_str()).collect();
    assert_eq!(changed_columns, ["total_amount", "average_amount"]);
    let trips = changed.new[count].as_f64().unwrap_or_default();
    let total = column(sixth, "total_amount");
    let taken_off = changed.old[total].as_f64().unwrap_or_default() - changed.new[total].as_f64().unwrap_or_default();
    assert!((taken_off - 5.0 * trips).abs() < 0.01, "{taken_off} for {trips} trips");
    assert_eq!(drift_days(&steps[5]), ["2008-12-31"]);
}

#[tokio::test]
async fn replaying_a_sessions_actions_rebuilds_every_table() {
    let mut original = engine();
    walk(&mut original).await;
    let mut replayed = engine();
    let notes = replayed.replay(&original.state.actions).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(notes.is_empty(), "{notes:?}");
    let tables: Vec<String> = original.state.warehouse.relations().map(|(name, _)| name.to_string()).collect();
    assert_eq!(tables, replayed.state.warehouse.relations().map(|(name, _)| name.to_string()).collect::<Vec<_>>());
    for table in &tables {
        let sql = format!("select * from {table} order by all");
        assert_eq!(csv(&original, &sql).await, csv(&replayed, &sql).await, "{table}");
    }
    let statuses = |e: &Engine| e.partitions().into_iter().map(|p| (p.day, p.status.name())).collect::<Vec<_>>();
    assert_eq!(statuses(&original), statuses(&replayed));
    assert_eq!(original.state.actions, replayed.state.actions, "the replay records the same actions");
}

#[tokio::test]
async fn a_share_link_reopens_the_lesson_and_what_followed() {
    let mut original = engine();
    for step in 1..=4 {
        lesson::run_step(&mut original, step).await.unwrap_or_else(|e| panic!("step {step}: {e}"));
    }
    original.materialize("2023-04-10", false).await.and_then(|b| b.into_result()).unwrap_or_else(|e| panic!("{e}"));
    let view = View { lesson_steps: lesson::outcomes(&original.state).unwrap_or_else(|e| panic!("{e}")).len(), ..View::default() };
    let fragment = SharedSession::new(original.state.actions.clone(), view).to_fragment().unwrap_or_else(|e| panic!("{e}"));

    let shared = SharedSession::from_fragment(&fragment).unwrap_or_else(|e| panic!("{e}"));
    let (mut opened, notes) = share::open(&shared).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(lesson::outcomes(&opened.state).unwrap_or_else(|e| panic!("{e}")).len(), 4);
    assert_eq!(lesson::outcomes(&opened.state).unwrap_or_else(|e| panic!("{e}"))[3].diff, lesson::outcomes(&original.state).unwrap_or_else(|e| panic!("{e}"))[3].diff);
    let sql = "select * from daily_metrics order by all";
    assert_eq!(csv(&original, sql).await, csv(&opened, sql).await);
    let materialized = |e: &Engine| e.partitions().into_iter().filter(|p| p.status.name() == "materialized").map(|p| p.day).collect::<Vec<_>>();
    assert_eq!(materialized(&opened).len(), 2);
    assert_eq!(materialized(&original), materialized(&opened));

    let error = lesson::run_step(&mut opened, 6).await.expect_err("step 5 comes first");
    assert!(error.to_string().contains("run step 5 next"), "{error}");
}

#[tokio::test]
async fn time_travel_shows_the_table_as_it_was_after_any_run() {
    let mut engine = engine();
    let key = ["date_of_business".to_string()];
    let keyed = |e: &Engine| {
        let table = e.state.warehouse.table(&RelationName::main("daily_metrics")).cloned();
        table.and_then(|t| KeyedRows::of(&t, &key)).unwrap_or_else(|| panic!("daily_metrics is small and keyed"))
    };
    let mut after_step = Vec::new();
    for step in 1..=6 {
        let outcome = lesson::run_step(&mut engine, step).await.unwrap_or_else(|e| panic!("step {step}: {e}"));
        after_step.push((outcome.run_ids.last().copied().unwrap_or_default(), keyed(&engine)));
    }
    let current = keyed(&engine);
    for (run_id, rows) in &after_step {
        let travelled = rows_after(&current, &engine.state.runs, "daily_metrics", *run_id);
        assert!(travelled.is_some_and(|t| t.same_as(rows)), "after run {run_id}");
    }
    // Before the first run there was no table at all.
    assert_eq!(rows_after(&current, &engine.state.runs, "daily_metrics", 0).map(|r| r.rows.len()), Some(0));
    // After step 3 the chart shows 2023-03-15 without its 400 late trips.
    let count = |rows: &KeyedRows| {
        daily_points(rows).iter().find(|p| p.date.to_string() == "2023-03-15").map(|p| p.trip_count).unwrap_or_default()
    };
    assert_eq!(count(&current) - count(&after_step[2].1), 400);
}

#[tokio::test]
async fn strategies_side_by_side_drift_where_they_should() {
    let mut seen = Vec::new();
    let comparison = compare::compare(&lesson::data_story(), async |done, all| seen.push((done, all))).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(seen.len(), 5, "two months, two late days, one correction");
    assert!(comparison.skipped.is_empty());
    let drift = |strategy: Strategy| {
        let variant = comparison.variants.iter().find(|v| v.strategy == strategy).unwrap_or_else(|| panic!("{strategy:?}"));
        let drift = variant.drift.as_ref().unwrap_or_else(|| panic!("{strategy:?} kept no drift"));
        let rows: Vec<Vec<serde_json::Value>> = drift.changed.iter().map(|c| c.new.clone()).chain(drift.added.iter().cloned()).collect();
        let mut found = days(&rows);
        found.extend(days(&drift.removed).into_iter().map(|d| format!("extra {d}")));
        found.sort();
        found
    };
    // The truth is judged apart from the variant that makes it: one build after every arrival.
    let mut once = engine();
    for arrival in lesson::data_story() {
        once.apply(&arrival).await.unwrap_or_else(|e| panic!("{e}"));
    }
    once.build(&BuildRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let built = once.state.warehouse.table(&RelationName::main("daily_metrics")).unwrap_or_else(|| panic!("no daily_metrics"));
    let truth = comparison.truth.as_ref().unwrap_or_else(|| panic!("no truth"));
    assert_eq!(Some(truth), KeyedRows::of(built, &["date_of_business".to_string()]).as_ref());
    assert!(truth.rows.len() > 50, "{} days", truth.rows.len());
    // The max filter misses every late or corrected day and the April file's strays.
    assert_eq!(drift(Strategy::MaxFilter), ["2008-12-31", "2023-03-15", "2023-03-31", "2023-04-02", "2023-04-05"]);
    // Partitions catch everything in their definition; 2008 is in none.
    assert_eq!(drift(Strategy::Partitioned), ["2008-12-31"]);
    // Microbatch's lookback catches March 31's strays; late data older than the lookback waits
    // for a targeted backfill.
    assert_eq!(drift(Strategy::Microbatch), ["2008-12-31", "2023-03-15", "2023-04-02", "2023-04-05"]);
}

