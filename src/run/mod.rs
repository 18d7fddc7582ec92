//! Runs: `dbt build` over a selection of models, then their data tests. A run works on a copy
//! of the warehouse and hands it back only if everything succeeded, so a failed run leaves
//! every table as it was.

mod dag;
mod data_tests;
mod materialize;

use web_time::Instant;

pub use dag::Dag;
pub use materialize::Changes;

use crate::error::Error;
use crate::history::{ModelRun, RunStatus, TestRun};
use crate::project::{Materialization, Project, Strategy};
use crate::template::{self, CompileContext, Vars};
use crate::warehouse::{RelationName, Warehouse};

/// What to build, as `dbt build` takes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildRequest {
    /// dbt selection syntax; empty builds everything.
    pub select: String,
    pub full_refresh: bool,
    pub vars: Vars,
}

/// The result of a build: the new warehouse if it succeeded, and what happened either way.
#[derive(Debug)]
pub struct BuildOutcome {
    pub warehouse: Result<Warehouse, Error>,
    pub models: Vec<ModelRun>,
    pub tests: Vec<TestRun>,
}

/// Builds the selected models in DAG order on a copy of `warehouse`, then runs their tests.
pub async fn build(
    project: &Project,
    warehouse: &Warehouse,
    request: &BuildRequest,
    env: &std::collections::BTreeMap<String, String>,
) -> BuildOutcome {
    let mut models = Vec::new();
    let mut tests = Vec::new();
    let result = build_inner(project, warehouse, request, env, &mut models, &mut tests).await;
    BuildOutcome { warehouse: result, models, tests }
}

async fn build_inner(
    project: &Project,
    warehouse: &Warehouse,
    request: &BuildRequest,
    env: &std::collections::BTreeMap<String, String>,
    model_runs: &mut Vec<ModelRun>,
    test_runs: &mut Vec<TestRun>,
) -> Result<Warehouse, Error> {
    let mut vars = project.vars.clone();
    vars.extend(request.vars.clone());
    let base_ctx = CompileContext { vars, is_incremental: false, env: env.clone() };
    let dag = Dag::of(project, &base_ctx)?;
    let selected = dag.select(&request.select)?;
    let aliases = project.aliases();
    let mut working = warehouse.clone();
    for name in &selected {
        let started = Instant::now();
        let model = project.model(name).ok_or_else(|| Error::Usage(format!("no model {name}")))?;
        let relation = RelationName::main(name);
        // dbt's is_incremental(): an incremental model whose table exists, not full-refreshed.
        let parse = dag
            .parsed(name)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("no model {name}")))?;
        let full_refresh = parse.config.full_refresh.unwrap_or(request.full_refresh);
        let incremental = parse.config.materialized == Materialization::Incremental
            && working.table(&relation).is_some()
            && !full_refresh;
        let compiled = if incremental {
            template::compile(project, name, &CompileContext { is_incremental: true, ..base_ctx.clone() })?
        } else {
            parse
        };
        if incremental && compiled.config.strategy() == Strategy::Microbatch {
            return Err(Error::Sql {
                model: name.clone(),
                file: model.path.clone(),
                message: "incremental_strategy microbatch is not supported yet".into(),
            });
        }
        let outcome = materialize::materialize(&mut working, project.dialect, &aliases, &compiled, incremental).await;
        let elapsed = started.elapsed().as_millis() as u64;
        let (changes, error) = match outcome {
            Ok(changes) => (changes, None),
            Err(message) => (Changes::default(), Some(message)),
        };
        model_runs.push(ModelRun {
            name: name.clone(),
            materialization: format!("{:?}", compiled.config.materialized).to_lowercase(),
            strategy: incremental.then(|| compiled.config.strategy().as_str().to_string()),
            is_incremental: incremental,
            compiled_sql: compiled.sql.clone(),
            rows_inserted: changes.inserted,
            rows_updated: changes.updated,
            rows_deleted: changes.deleted,
            rows_after: changes.rows_after,
            duration_ms: elapsed,
            status: if error.is_some() { RunStatus::Failed } else { RunStatus::Success },
            error: error.clone(),
        });
        if let Some(message) = error {
            return Err(Error::Sql { model: name.clone(), file: model.path.clone(), message });
        }
    }
    for test in project.tests.iter().filter(|t| selected.contains(&t.model)) {
        let failures = data_tests::failures(&working, project, test).await?;
        test_runs.push(TestRun {
            name: test.name(),
            failures,
            status: if failures == 0 { RunStatus::Success } else { RunStatus::Failed },
        });
        if failures > 0 {
            return Err(Error::TestFailed { test: test.name(), failures });
        }
    }
    Ok(working)
}
