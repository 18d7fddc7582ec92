//! Project files from a share link: replayed as `Action::ProjectFiles`, they meet the filter an
//! import applies, and a refused set changes neither the project nor the recorded actions.

use std::collections::BTreeMap;

use backfill::{LESSON, builtin};
use backfill::Error;
use backfill::Limit;
use backfill::Action;
use backfill::Engine;
use backfill::State;

fn engine() -> Engine {
    Engine::new(builtin(LESSON).unwrap_or_else(|e| panic!("{e}")), State::default(), builtin)
}

#[tokio::test]
async fn a_links_files_cannot_plant_paths_a_project_does_not_read() {
    let mut engine = engine();
    let before = engine.project.files.clone();
    for planted in ["models/x.py", "../escape.sql", "models/../../escape.sql", "/etc/cron.d/x.sql", "target/x.sql"] {
        let mut files = before.0.clone();
        files.insert(planted.to_string(), "select 1".to_string());
        let error = engine.apply(&Action::ProjectFiles { files }).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with(&format!("{planted}: not a file a dbt project reads")), "{planted}: {error}");
        assert_eq!(engine.project.files, before);
        assert!(engine.state.actions.is_empty(), "{:?}", engine.state.actions);
    }
}

#[tokio::test]
async fn a_links_files_are_bounded_like_an_import() {
    let mut engine = engine();
    let before = engine.project.files.clone();
    let mut files: BTreeMap<String, String> = before.0.clone();
    files.insert("models/huge.sql".into(), format!("select '{}'", "x".repeat(Limit::ProjectBytes.max() as usize)));
    let error = engine.apply(&Action::ProjectFiles { files }).await.err();
    assert!(matches!(error, Some(Error::Limit { limit: Limit::ProjectBytes, .. })), "{error:?}");
    assert_eq!(engine.project.files, before);
    assert!(engine.state.actions.is_empty());
}
