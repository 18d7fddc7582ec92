//! Share links are written by strangers: opening one that fails, part way or up front, leaves
//! the receiver's session and its saved state as they were, and says which step failed.

use backfill::{LESSON, builtin};
use backfill::lesson;
use backfill::share::{self, SharedSession, View};
use backfill::BuildRequest;
use backfill::Error;
use backfill::Limit;
use backfill::Action;
use backfill::Engine;
use backfill::{MemoryStore, State};
use backfill::sample::{FileSchema, SampleSpec};
use backfill::query::to_csv;

fn sample(month: &str, rows: usize) -> Action {
    Action::Sample { spec: SampleSpec { month: month.into(), rows, seed: 1, schema: FileSchema::Y2023 } }
}

/// The receiver: a built month, saved.
async fn saved_session() -> (Engine, MemoryStore) {
    let mut engine = Engine::new(builtin(LESSON).unwrap_or_else(|e| panic!("{e}")), State::default(), builtin);
    engine.load_sample(&SampleSpec { month: "2023-03".into(), rows: 5_000, seed: 1, schema: FileSchema::Y2023 }).unwrap_or_else(|e| panic!("{e}"));
    engine.build(&BuildRequest::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut store = MemoryStore::default();
    engine.state.save(&mut store).unwrap_or_else(|e| panic!("{e}"));
    (engine, store)
}

async fn tables(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    for (name, _) in engine.state.warehouse.relations() {
        let table = engine.query(&format!("select * from {name} order by all")).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push(format!("{name}\n{}", to_csv(&table)));
    }
    out
}

/// What the worker does with a link: replace the session only with a link that opened whole.
async fn open_link(engine: &mut Engine, fragment: &str) -> Result<Vec<String>, Error> {
    let shared = SharedSession::from_fragment(fragment)?;
    let (opened, notes) = share::open(&shared).await?;
    *engine = opened;
    Ok(notes)
}

#[tokio::test]
async fn a_link_that_fails_part_way_leaves_the_session_as_it_was() {
    let (mut engine, store) = saved_session().await;
    let (before, runs) = (tables(&engine).await, engine.state.runs.clone());
    // Its first lesson step (3 actions) and two more steps replay; the sixth names no model.
    let mut actions: Vec<Action> = lesson::steps().swap_remove(0).actions;
    let build = Action::Build { command: Default::default(), select: String::new(), exclude: String::new(), full_refresh: false, vars: Default::default(), event_time_start: None, event_time_end: None };
    actions.extend([sample("2023-04", 1_000), build, Action::Model { name: "nope".into(), sql: "select 1".into() }]);
    let view = View { lesson_steps: 1, ..View::default() };
    let fragment = SharedSession::new(actions, view).to_fragment().unwrap_or_else(|e| panic!("{e}"));

    let error = open_link(&mut engine, &fragment).await.expect_err("no model nope");
    assert_eq!(error.to_string(), "step 6 of the link (edit model nope): no model nope");
    assert_eq!(tables(&engine).await, before, "the half-replayed link replaced the session's tables");
    assert_eq!(engine.state.runs, runs);
    let mut saved = store.clone();
    engine.state.save(&mut saved).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(saved.0, store.0, "the next save wrote something of the failed link");
}

#[tokio::test]
async fn a_link_over_a_limit_is_refused_before_anything_runs() {
    let (mut engine, _) = saved_session().await;
    let before = tables(&engine).await;
    // The page makes no such link (it checks its own), so this one is written by hand.
    let json = r#"{"version":1,"actions":[{"do":"sample","spec":{"month":"2023-05","rows":100000000,"seed":1,"schema":"Y2023"}}]}"#;
    let bomb = format!("#s={}", deflated(json));
    let started = std::time::Instant::now();
    let error = open_link(&mut engine, &bomb).await.expect_err("10^8 rows");
    assert!(started.elapsed().as_secs() < 5, "refused only after {:?}", started.elapsed());
    assert!(matches!(&error, Error::Limit { limit: Limit::SampleRows, place, value: Some(100_000_000) } if place == "step 1 of the link (generate 2023-05 (100,000,000 trips))"), "{error:?}");
    assert_eq!(tables(&engine).await, before);
}

fn deflated(json: &str) -> String {
    use base64::Engine as _;
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let bytes = encoder.write_all(json.as_bytes()).and_then(|()| encoder.finish()).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A link's partition runs are bounded together, the microbatch batches its builds make too: they
/// are known only when the build runs, and it is refused before its first batch.
#[tokio::test]
async fn a_link_whose_microbatch_builds_run_too_many_batches_is_refused_before_the_first() {
    let (mut engine, _) = saved_session().await;
    let before = tables(&engine).await;
    let build = |end: &str| Action::Build {
        command: Default::default(),
        select: "+daily_metrics".into(),
        exclude: String::new(),
        full_refresh: false,
        vars: Default::default(),
        event_time_start: Some("2023-03-01".into()),
        event_time_end: Some(end.into()),
    };
    let link = |end: &str| {
        let project = Action::Project { name: "builtin:lesson-microbatch".into() };
        let actions = vec![project, sample("2023-03", 1_000), build("2023-03-08"), build(end)];
        SharedSession::new(actions, View::default()).to_fragment().unwrap_or_else(|e| panic!("{e}"))
    };

    // A week of daily batches, then 1,994 more: one over the link's 2,000.
    let error = open_link(&mut engine, &link("2028-08-15")).await.expect_err("2,001 partition runs");
    let Error::Replay { step: 4, message, .. } = &error else { panic!("{error:?}") };
    assert_eq!(message, &Limit::LinkPartitions.message("models/marts/daily_metrics.sql (model daily_metrics, 1,994 batches)", Some(2_001)));
    assert_eq!(tables(&engine).await, before);
    assert!(engine.state.runs.iter().all(|run| run.models.iter().all(|m| m.batches.is_empty())));

    open_link(&mut engine, &link("2023-03-15")).await.unwrap_or_else(|e| panic!("three weeks of batches: {e}"));
    let batches = engine.state.runs.iter().flat_map(|run| &run.models).map(|m| m.batches.len()).collect::<Vec<_>>();
    assert_eq!(batches, [0, 7, 0, 14]);
}
