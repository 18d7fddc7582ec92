//! Runs: `dbt build` over a selection of seeds and models, each data test as soon as what it
//! reads is built. A run works on a copy of the warehouse and hands it back only if everything
//! succeeded, so a failed run leaves every table as it was.

mod dag;
mod data_tests;
mod introspect;
mod list;
mod materialize;
mod microbatch;
mod seeds;
mod select;
mod snapshot;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use web_time::Instant;

pub use dag::Dag;
pub use introspect::compile_live;
pub use list::Listed;
pub use materialize::Changes;
pub use microbatch::parse_time;

use crate::dbt::history::{ModelRun, Phases, RunStatus, TestRun};
use crate::dbt::project::{Materialization, Project, Strategy};
use crate::dbt::request::{BuildRequest, DbtCommand};
use crate::dbt::table_diff;
use crate::dbt::template::{BatchContext, CompileContext, CompiledModel, CompiledTest};
use crate::error::{Error, SqlFailure};
use crate::limits::{Limit, quantity};
use crate::sql::warehouse::{Aliases, RelationName, Warehouse};

/// The result of a build: the new warehouse if it succeeded, and what happened either way.
#[derive(Debug)]
pub struct BuildOutcome {
    pub warehouse: Result<Warehouse, Error>,
    pub models: Vec<ModelRun>,
    pub tests: Vec<TestRun>,
}

/// Builds the selected models in DAG order on a copy of `warehouse`, then runs their tests.
/// `raw` are the tables loaded from outside the project, which no model may replace.
/// `batch_budget` is how many microbatch batches a share link may still run (its partition
/// runs are counted together, [`Limit::LinkPartitions`]); `None` outside a link.
pub async fn build(
    project: &Project,
    warehouse: &Warehouse,
    raw: &[RelationName],
    request: &BuildRequest,
    env: &BTreeMap<String, String>,
    batch_budget: Option<u64>,
) -> BuildOutcome {
    let mut models = Vec::new();
    let mut tests = Vec::new();
    let result = build_inner(project, warehouse, raw, request, env, batch_budget, &mut models, &mut tests).await;
    BuildOutcome { warehouse: result, models, tests }
}

async fn build_inner(
    project: &Project,
    warehouse: &Warehouse,
    raw: &[RelationName],
    request: &BuildRequest,
    env: &BTreeMap<String, String>,
    batch_budget: Option<u64>,
    model_runs: &mut Vec<ModelRun>,
    test_runs: &mut Vec<TestRun>,
) -> Result<Warehouse, Error> {
    let project = &*project.with_vars(&request.vars)?;
    project.check_reserved_names(raw)?;
    let mut vars = project.vars.clone();
    vars.extend(request.vars.clone());
    let base_ctx = CompileContext { vars, env: env.clone(), ..CompileContext::default() };
    let dag = Dag::of(project, &base_ctx)?;
    let selected = dag.select(&request.select, &request.exclude)?;
    let step = Step {
        project,
        dag: &dag,
        request,
        base_ctx: &base_ctx,
        aliases: project.aliases(),
        batches_left: Cell::new(batch_budget),
    };
    let mut working = warehouse.clone();
    let builds = |name: &&String| match request.command {
        DbtCommand::Build => true,
        DbtCommand::Run => dag.resource_type(name) == "model",
        DbtCommand::Seed => dag.resource_type(name) == "seed",
        DbtCommand::Snapshot => dag.resource_type(name) == "snapshot",
        DbtCommand::Test => false,
    };
    let to_build: Vec<&String> = selected.iter().filter(builds).collect();
    let runs_tests = matches!(request.command, DbtCommand::Build | DbtCommand::Test);
    let mut pending = if runs_tests { dag.select_tests(&request.select, &request.exclude)? } else { Vec::new() };
    // As dbt build does, a test runs as soon as what it reads is built, before their children.
    let mut progress = Progress { fail_fast: request.fail_fast, ..Progress::default() };
    step.ready_tests(&working, &mut pending, &to_build, &mut progress, test_runs).await?;
    for name in &to_build {
        if progress.stopped() {
            break;
        }
        if dag.parents(name).any(|p| progress.broken.contains(p) || progress.failed_tests_read.contains(p)) {
            let materialization = dag.parsed(name).map_or("seed".to_string(), |m| format!("{:?}", m.config.materialized).to_lowercase());
            model_runs.push(ModelRun::skipped(name, &materialization));
            progress.broken.insert((*name).clone());
            continue;
        }
        // A model that cannot even compile fails as one whose SQL fails: the rest goes on.
        let (run, failure) = match step.model(&mut working, name).await {
            Ok((run, failure)) => (Some(run), failure),
            Err(error) => (None, Some(error)),
        };
        model_runs.extend(run);
        match failure {
            Some(error) => {
                progress.broken.insert((*name).clone());
                progress.fail(error);
            }
            None => drop(progress.built.insert((*name).clone())),
        }
        step.ready_tests(&working, &mut pending, &to_build, &mut progress, test_runs).await?;
    }
    match progress.error {
        Some(error) => Err(error),
        None => Ok(working),
    }
}

/// Where a run stands: what it built, what failed or was skipped, its first error.
#[derive(Default)]
struct Progress {
    fail_fast: bool,
    built: BTreeSet<String>,
    /// Models and seeds that failed or were skipped: what reads them is skipped.
    broken: BTreeSet<String>,
    /// What a failing test read: the models built from it are skipped (as dbt build does),
    /// its other tests still run.
    failed_tests_read: BTreeSet<String>,
    error: Option<Error>,
}

impl Progress {
    fn fail(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }

    /// With `--fail-fast`, nothing runs after the first failure.
    fn stopped(&self) -> bool {
        self.fail_fast && self.error.is_some()
    }
}

/// Everything one model's or test's run needs besides the warehouse it changes.
struct Step<'a> {
    project: &'a Project,
    dag: &'a Dag,
    request: &'a BuildRequest,
    base_ctx: &'a CompileContext,
    aliases: Aliases,
    /// A share link's remaining microbatch batches, shared by every model of the run.
    batches_left: Cell<Option<u64>>,
}

impl<'a> Step<'a> {
    /// Runs the `pending` tests whose every node this run builds is built, and skips those
    /// that read a broken one; a failing test (severity error) fails the run and skips the
    /// models built from what it read.
    async fn ready_tests(
        &self,
        working: &Warehouse,
        pending: &mut Vec<&'a CompiledTest>,
        to_build: &[&String],
        progress: &mut Progress,
        test_runs: &mut Vec<TestRun>,
    ) -> Result<(), Error> {
        let waits = |test: &CompiledTest, progress: &Progress| {
            self.dag.parents(&test.name).any(|p| to_build.contains(&p) && !progress.built.contains(p) && !progress.broken.contains(p))
        };
        let (ready, waiting) = pending.iter().copied().partition::<Vec<_>, _>(|t| !waits(t, progress));
        *pending = waiting;
        for test in ready {
            if progress.stopped() {
                break;
            }
            let parents: Vec<String> = self.dag.parents(&test.name).cloned().collect();
            if parents.iter().any(|p| progress.broken.contains(p)) {
                test_runs.push(TestRun { name: test.name.clone(), failures: 0, status: RunStatus::Skipped });
                continue;
            }
            let run = data_tests::run(working, self.project, test, &self.base_ctx).await?;
            let failed = (run.status == RunStatus::Failed).then_some(run.failures);
            test_runs.push(run);
            if let Some(failures) = failed {
                progress.failed_tests_read.extend(parents);
                progress.fail(Error::TestFailed { test: test.name.clone(), failures });
            }
        }
        Ok(())
    }

    /// Runs one model into `working`; a SQL failure is reported in the returned record and
    /// returned beside it as the run's error.
    async fn model(&self, working: &mut Warehouse, name: &str) -> Result<(ModelRun, Option<Error>), Error> {
        let started = Instant::now();
        let Some(parse) = self.dag.parsed(name).cloned() else {
            return Ok((self.seed(working, name, started).await?, None));
        };
        let full_refresh = parse.config.full_refresh.unwrap_or(self.request.full_refresh);
        // dbt's is_incremental(): an incremental model whose table exists, not full-refreshed.
        let incremental = parse.config.materialized == Materialization::Incremental
            && working.table(&RelationName::main(name)).is_some()
            && !full_refresh;
        if let Some(invalid) = &parse.invalid_config
            && (incremental || !invalid.strategy_only)
        {
            return Err(Error::project(self.dag.paths.get(name).map_or(name, String::as_str), invalid.message.clone()));
        }
        let microbatch = parse.config.materialized == Materialization::Incremental
            && parse.config.strategy() == Strategy::Microbatch;
        let before = working.table(&RelationName::main(name)).cloned();
        let mut phases = Phases::default();
        let (compiled, outcome, batches) = if microbatch {
            self.batches(working, &parse, incremental, &mut phases).await?
        } else {
            let compile_start = Instant::now();
            // The graph's compile stands unless the run compiles differently: incrementally, or
            // with what the template asks of the warehouse answered.
            let compiled = if incremental || !parse.asked.is_empty() { self.compile(working, name, incremental, None).await? } else { parse };
            phases.lap("compile", compile_start);
            let outcome =
                materialize::materialize(working, self.project.dialect, &self.aliases, &compiled, incremental, &mut phases).await;
            (compiled, outcome, Vec::new())
        };
        let (changes, failure) = match outcome {
            Ok(changes) => (changes, None),
            Err(failure) => (Changes::default(), Some(self.failure(name, failure))),
        };
        let error = failure.as_ref().map(|e| match e {
            Error::Sql { message, .. } => message.clone(),
            other => other.to_string(),
        });
        let diff_start = Instant::now();
        let diff = match (&error, working.table(&RelationName::main(name))) {
            (None, Some(after)) => table_diff::diff(before.as_ref(), changes.written.as_ref(), after, &compiled.config.unique_key),
            _ => None,
        };
        phases.lap("diff", diff_start);
        let run = ModelRun {
            name: name.to_string(),
            materialization: format!("{:?}", compiled.config.materialized).to_lowercase(),
            strategy: incremental.then(|| compiled.config.strategy().as_str().to_string()),
            is_incremental: incremental,
            compiled_sql: compiled.sql.clone(),
            batches,
            rows_inserted: changes.inserted,
            rows_updated: changes.updated,
            rows_deleted: changes.deleted,
            rows_after: changes.rows_after,
            plan: changes.plan,
            diff,
            duration_ms: started.elapsed().as_millis() as u64,
            phases,
            status: if error.is_some() { RunStatus::Failed } else { RunStatus::Success },
            error,
        };
        Ok((run, failure))
    }

    /// A model's SQL failure as the run reports it: a bound at the model's file, or the
    /// message at the place in the model's source it is about.
    fn failure(&self, name: &str, failure: SqlFailure) -> Error {
        let (file, source) = self.project.model(name).map(|m| (m.path.clone(), m.sql.as_str())).unwrap_or_default();
        let place = format!("{file} (model {name})");
        failure.into_error(&place, |message, column| Error::Sql {
            model: name.to_string(),
            at: column.and_then(|column| crate::error::locate_column(source, &column)),
            file,
            message,
        })
    }

    /// A microbatch model: one compile and materialization per batch, the first creating the
    /// table unless the run is incremental. Returns the first batch's SQL and the summed changes.
    async fn batches(
        &self,
        working: &mut Warehouse,
        parse: &CompiledModel,
        incremental: bool,
        phases: &mut Phases,
    ) -> Result<(CompiledModel, Result<Changes, SqlFailure>, Vec<String>), Error> {
        let name = parse.name.as_str();
        let file = self.project.model(name).map(|m| m.path.clone()).unwrap_or_default();
        let now = chrono::Utc::now().naive_utc();
        let windows = microbatch::batches(&parse.config, incremental, self.request.event_time, now, (name, &file))?;
        if let Some(left) = self.batches_left.get() {
            let count = windows.len() as u64;
            if count > left {
                let runs = Limit::LinkPartitions.max().saturating_sub(left).saturating_add(count);
                let place = format!("{file} (model {name}, {})", quantity(count, "batches"));
                return Err(Limit::LinkPartitions.exceeded(Some(runs), place));
            }
            self.batches_left.set(Some(left - count));
        }
        let model_event_times: BTreeMap<String, String> = self
            .dag
            .order()
            .iter()
            .filter_map(|m| Some((m.clone(), self.dag.parsed(m)?.config.event_time.clone()?)))
            .collect();
        let size = parse.config.batch_size.unwrap_or(crate::dbt::project::BatchSize::Day);
        let labels = windows.iter().map(|w| w.label(size)).collect();
        let mut first: Option<CompiledModel> = None;
        let mut total = Changes::default();
        for (index, window) in windows.into_iter().enumerate() {
            let batch_incremental = index > 0 || incremental;
            let batch = BatchContext { window, model_event_times: model_event_times.clone() };
            let compile_start = Instant::now();
            let compiled = self.compile(working, name, batch_incremental, Some(batch)).await?;
            phases.lap("compile", compile_start);
            let outcome =
                materialize::materialize(working, self.project.dialect, &self.aliases, &compiled, batch_incremental, phases).await;
            let changes = match outcome {
                Ok(changes) => changes,
                Err(failure) => {
                    let label = window.label(size);
                    return Ok((compiled, Err(failure.within(&format!("batch {label}"))), labels));
                }
            };
            total = Changes {
                inserted: total.inserted + changes.inserted,
                updated: total.updated + changes.updated,
                deleted: total.deleted + changes.deleted,
                rows_after: changes.rows_after,
                plan: if total.plan.is_empty() { changes.plan } else { total.plan },
                written: None,
            };
            first.get_or_insert(compiled);
        }
        let compiled = first.unwrap_or_else(|| parse.clone());
        Ok((compiled, Ok(total), labels))
    }

    /// A seed is (re)loaded from its CSV on every build, as `dbt build` does.
    async fn seed(&self, working: &mut Warehouse, name: &str, started: Instant) -> Result<ModelRun, Error> {
        let seed = self
            .project
            .seeds
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::Usage(format!("no model or seed {name}")))?;
        let table = seeds::table(seed, self.project.dialect).await.map_err(|message| Error::Project { file: seed.path.clone(), message })?;
        let rows = table.num_rows();
        working.put_table(RelationName::main(name), table);
        Ok(ModelRun {
            name: name.to_string(),
            materialization: "seed".into(),
            strategy: None,
            is_incremental: false,
            compiled_sql: String::new(),
            batches: Vec::new(),
            rows_inserted: rows,
            rows_updated: 0,
            rows_deleted: 0,
            rows_after: rows,
            plan: String::new(),
            diff: None,
            duration_ms: started.elapsed().as_millis() as u64,
            phases: Phases::default(),
            status: RunStatus::Success,
            error: None,
        })
    }

    async fn compile(&self, working: &Warehouse, name: &str, is_incremental: bool, batch: Option<BatchContext>) -> Result<CompiledModel, Error> {
        compile_live(self.project, name, &CompileContext { is_incremental, batch, ..self.base_ctx.clone() }, working).await
    }
}
