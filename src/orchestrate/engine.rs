//! The engine's public face: one project and its state, and the operations the CLI and the page
//! offer (load, build, materialize partitions, query, inspect). Each operation either succeeds
//! whole or leaves the tables as they were; runs are recorded either way.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use web_time::Instant;

use crate::dbt::history::{self, RunRecord, RunStatus};
use crate::dbt::lineage::Lineage;
use crate::dbt::project::{Materialization, Model, Project, ProjectFiles};
use crate::dbt::request::{BuildRequest, EventTimeRange, Vars};
use crate::dbt::run::{self, Dag, compile_live};
use crate::dbt::table_diff::{self, TableDiff};
use crate::dbt::template::{self, CompileContext};
use crate::error::{Error, FailedRun, Result, SqlFailure};
use crate::limits::Limit;
use crate::orchestrate::actions::{self, Action};
use crate::orchestrate::partitions::{DailyPartitions, DayFingerprints, PartitionStatus, day_text, range_text, run_request, runs_of};
use crate::orchestrate::state::{LoadedFile, State};
use crate::sources::ingest::{self, trips_relation, zones_relation};
use crate::sources::sample::{self, SampleSpec};
use crate::sources::source_edits;
use crate::sql::warehouse::{RelationName, Table, collect, typed_column};

/// The model name `dbt show --inline` gives the SQL it compiles.
pub const INLINE: &str = "inline_query";

/// The projects an [`Action::Project`] names (`builtin:lesson`, …), by name: the layer above
/// the engine supplies them, so replaying a session can switch to one.
pub type Builtins = fn(&str) -> Result<Project>;

pub struct Engine {
    pub project: Project,
    pub state: State,
    /// What `env_var()` may read.
    pub env: BTreeMap<String, String>,
    /// Microbatch batches this engine may still run, all its builds together: a share link's
    /// engine has a budget ([`Limit::LinkPartitions`]), the user's own has none.
    pub batch_budget: Option<u64>,
    builtins: Builtins,
}

/// What a backfill did: its successful runs, and the runs that failed (the others went on).
#[derive(Debug)]
pub struct Backfill {
    pub runs: Vec<RunRecord>,
    pub failed: Vec<FailedRun>,
    /// How many runs it launched.
    pub total: usize,
}

impl Backfill {
    pub fn new(total: usize) -> Backfill {
        Backfill { runs: Vec::new(), failed: Vec::new(), total }
    }

    /// Keeps one run's outcome: its record, or its partitions and why it failed.
    pub fn add(&mut self, (first, last): (NaiveDate, NaiveDate), outcome: Result<RunRecord>) {
        match outcome {
            Ok(record) => self.runs.push(record),
            Err(e) => self.failed.push(FailedRun { partitions: range_text(first, last), error: Box::new(e) }),
        }
    }

    /// The runs, or the failure if any run failed.
    pub fn into_result(self) -> Result<Vec<RunRecord>> {
        if self.failed.is_empty() {
            Ok(self.runs)
        } else {
            Err(Error::PartitionRunsFailed { total: self.total, failed: self.failed })
        }
    }
}

/// A backfill's runs, checked before the first: see [`Engine::plan_backfill`].
#[derive(Debug, Clone)]
pub struct BackfillPlan {
    pub runs: Vec<(NaiveDate, NaiveDate)>,
    /// The incremental models each run builds.
    models: Vec<String>,
    single_run: bool,
}

/// One partition and its status, for listing.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionInfo {
    pub day: NaiveDate,
    pub status: PartitionStatus,
}

impl Engine {
    pub fn new(project: Project, state: State, builtins: Builtins) -> Engine {
        Engine { project, state, env: BTreeMap::new(), batch_budget: None, builtins }
    }

    /// Ingests a TLC trip file as its month's slice of the raw trips table (that month's old
    /// rows are replaced), adding the built-in zones if there are none yet.
    pub fn load_trips(&mut self, name: &str, bytes: Vec<u8>, month: Option<&str>) -> Result<LoadedFile> {
        let file = ingest::read_trips(name, bytes, month)?;
        let loaded = self.put_trips(name, file)?;
        self.record(Action::File { name: name.to_string(), month: loaded.month.clone() });
        Ok(loaded)
    }

    /// Generates a sample month and ingests its batches directly (no Parquet round trip).
    pub fn load_sample(&mut self, spec: &SampleSpec) -> Result<LoadedFile> {
        let batches = sample::generate(spec)?;
        let file = ingest::trips_from_batches(&spec.file_name(), batches, &spec.month)?;
        let loaded = self.put_trips(&spec.file_name(), file)?;
        self.record(Action::Sample { spec: spec.clone() });
        Ok(loaded)
    }

    /// Adds `rows` trips picked up on `day`, arriving after its month was loaded.
    pub fn add_late_trips(&mut self, day: NaiveDate, rows: usize, seed: u64) -> Result<()> {
        let trips = self.trips("late trips")?;
        self.replace_trips(source_edits::with_late_trips(&trips, day, rows, seed)?);
        self.record(Action::LateTrips { day: day_text(day), rows, seed });
        Ok(())
    }

    /// Takes `amount` off every fare picked up on `day`, as a provider's corrected file would.
    pub fn correct_fares(&mut self, day: NaiveDate, amount: f64) -> Result<()> {
        let trips = self.trips("fare correction")?;
        self.replace_trips(source_edits::with_fares_corrected(&trips, day, amount)?);
        self.record(Action::CorrectFares { day: day_text(day), amount });
        Ok(())
    }

    fn trips(&self, what: &str) -> Result<Table> {
        self.state.warehouse.table(&trips_relation()).cloned().ok_or_else(|| Error::ingest(what, "no trips are loaded yet"))
    }

    fn replace_trips(&mut self, trips: Table) {
        self.state.fingerprints = DayFingerprints::of(Some(&trips), ingest::EVENT_TIME);
        self.state.warehouse.put_table(trips_relation(), trips);
    }

    /// Changes the project (a built-in one, imported files, or one model's SQL). Tables stay.
    pub fn change_project(&mut self, action: Action) -> Result<()> {
        self.project = changed_project(&self.project, &action, self.builtins)?;
        self.record(action);
        Ok(())
    }

    /// Rebuilds the project from the recorded actions, starting from `base` (a restored
    /// session keeps its edits).
    pub fn restore_project(&mut self, base: Project) -> Result<()> {
        let mut project = base;
        for action in self.state.actions.iter().filter(|a| a.is_project()) {
            project = changed_project(&project, action, self.builtins)?;
        }
        self.project = project;
        Ok(())
    }

    /// Performs a recorded action again. Returns a note instead for a file from disk, whose
    /// rows are not in the action.
    pub async fn apply(&mut self, action: &Action) -> Result<Option<String>> {
        let day = |text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| Error::Usage(format!("`{text}` is not a YYYY-MM-DD day")))
        };
        match action {
            Action::Project { .. } | Action::ProjectFiles { .. } | Action::Model { .. } => self.change_project(action.clone())?,
            Action::Sample { spec } => drop(self.load_sample(spec)?),
            Action::File { name, month } => {
                return Ok(Some(format!("{name} ({month}) was loaded from a disk and is not in the link")));
            }
            Action::LateTrips { day: d, rows, seed } => self.add_late_trips(day(d)?, *rows, *seed)?,
            Action::CorrectFares { day: d, amount } => self.correct_fares(day(d)?, *amount)?,
            Action::Build { command, select, exclude, full_refresh, vars, event_time_start, event_time_end } => {
                let time = |text: &Option<String>| match text {
                    Some(t) => run::parse_time(t).map(Some).ok_or_else(|| Error::Usage(format!("`{t}` is not a time"))),
                    None => Ok(None),
                };
                let event_time = EventTimeRange { start: time(event_time_start)?, end: time(event_time_end)? };
                let request =
                    BuildRequest { command: *command, select: select.clone(), exclude: exclude.clone(), full_refresh: *full_refresh, vars: vars.clone(), event_time, ..BuildRequest::default() };
                self.build(&request).await?;
            }
            Action::Materialize { range, single_run } => drop(self.materialize(range, *single_run).await?.into_result()?),
        }
        Ok(None)
    }

    /// Replays `actions` in order; the notes say what could not be replayed.
    pub async fn replay(&mut self, actions: &[Action]) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for (index, action) in actions.iter().enumerate() {
            let note = self.apply(action).await.map_err(|e| Error::Replay {
                step: index + 1,
                action: action.describe(),
                message: e.to_string(),
            })?;
            notes.extend(note);
        }
        Ok(notes)
    }

    fn record(&mut self, action: Action) {
        actions::record(&mut self.state.actions, action);
    }

    fn put_trips(&mut self, name: &str, file: ingest::TripFile) -> Result<LoadedFile> {
        // Every snapshot draws a cell per day: a month far from the others is refused here,
        // before anything changes, rather than widening the calendar past the limit.
        let months = self.state.files.iter().map(|f| f.month.as_str()).chain([file.month.as_str()]);
        if let Some(widened) = DailyPartitions::of_months(months) {
            Limit::PartitionDays.check(widened.day_count(), format!("{name} ({})", file.month))?;
        }
        let existing = self.state.warehouse.table(&trips_relation()).cloned();
        let mut batches = Vec::new();
        if let Some(existing) = &existing {
            batches.extend(without_month(existing, &file.month).map_err(|e| Error::ingest(name, e))?);
        }
        batches.extend(file.table.batches.iter().cloned());
        let trips = Table::new(ingest::trips_schema(), batches);
        if self.state.warehouse.table(&zones_relation()).is_none() {
            self.state.warehouse.put_table(zones_relation(), ingest::builtin_zones()?);
        }
        self.replace_trips(trips);
        let loaded = LoadedFile { name: name.to_string(), month: file.month.clone(), stats: file.stats };
        self.state.files.retain(|f| f.month != file.month);
        self.state.files.push(loaded.clone());
        self.state.files.sort_by(|a, b| a.month.cmp(&b.month));
        Ok(loaded)
    }

    /// Replaces the zone table with a TLC `taxi_zones.csv`.
    pub fn load_zones(&mut self, name: &str, bytes: &[u8]) -> Result<usize> {
        let zones = ingest::read_zones(name, bytes)?;
        let rows = zones.num_rows();
        self.state.warehouse.put_table(zones_relation(), zones);
        Ok(rows)
    }

    /// `dbt build`: the run is recorded whether it succeeds or fails.
    pub async fn build(&mut self, request: &BuildRequest) -> Result<RunRecord> {
        let command = history::dbt_command(request);
        let record = self.run(request, command, Vec::new()).await?;
        let time = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        self.record(Action::Build {
            command: request.command,
            select: request.select.clone(),
            exclude: request.exclude.clone(),
            full_refresh: request.full_refresh,
            vars: request.vars.clone(),
            event_time_start: time(request.event_time.start),
            event_time_end: time(request.event_time.end),
        });
        if request.full_refresh && self.touches_partitioned_models(request) {
            // Rebuilt from scratch: no partition run is reflected in the table any more.
            self.state.partitions.clear();
        }
        Ok(record)
    }

    async fn run(&mut self, request: &BuildRequest, command: String, partitions: Vec<String>) -> Result<RunRecord> {
        let started = Instant::now();
        let started_at = now_text();
        let outcome = run::build(&self.project, &self.state.warehouse, &raw_tables(), request, &self.env, self.batch_budget).await;
        let batches_run = outcome.models.iter().map(|m| m.batches.len() as u64).sum::<u64>();
        self.batch_budget = self.batch_budget.map(|left| left.saturating_sub(batches_run));
        let id = self.state.runs.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        let (status, error, result) = match outcome.warehouse {
            Ok(warehouse) => {
                self.state.warehouse = warehouse;
                (RunStatus::Success, None, Ok(()))
            }
            Err(e) => (RunStatus::Failed, Some(e.to_string()), Err(e)),
        };
        let record = RunRecord {
            id,
            started_at,
            command,
            vars: request.vars.clone(),
            partitions,
            status,
            error,
            models: outcome.models,
            tests: outcome.tests,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        self.state.runs.push(record.clone());
        result.map(|()| record)
    }

    /// The daily partitions: every day of every loaded month.
    pub fn partitions_definition(&self) -> Option<DailyPartitions> {
        DailyPartitions::of_months(self.state.files.iter().map(|f| f.month.as_str()))
    }

    pub fn partitions(&self) -> Vec<PartitionInfo> {
        let Some(definition) = self.partitions_definition() else { return Vec::new() };
        definition
            .days()
            .map(|day| PartitionInfo { day, status: self.state.partitions.status(day, &self.state.fingerprints) })
            .collect()
    }

    /// The project's model graph, compiled with its own vars.
    fn dag(&self) -> Result<Dag> {
        Dag::of(&self.project, &self.compile_context())
    }

    /// The project's graph with where each model stands: built or not, and an incremental
    /// model's partitions counted by status; empty if the project does not compile.
    pub fn lineage(&self) -> Lineage {
        let Ok(dag) = self.dag() else { return Lineage::default() };
        let partitioned = Self::incremental_models(&dag);
        let mut counts = BTreeMap::<&str, usize>::new();
        for partition in self.partitions() {
            *counts.entry(partition.status.name()).or_default() += 1;
        }
        let partitions = counts.iter().map(|(status, n)| format!("{n} {status}")).collect::<Vec<_>>().join(" · ");
        Lineage::of(&self.project, &dag, |name| {
            let built = self.state.warehouse.contains(&RelationName::main(name));
            match (built, partitioned.iter().any(|m| m == name)) {
                (true, true) if !partitions.is_empty() => partitions.clone(),
                (true, _) => "built".into(),
                (false, _) => "not built".into(),
            }
        })
    }

    fn incremental_models(dag: &Dag) -> Vec<String> {
        dag.order()
            .iter()
            .filter(|name| {
                dag.parsed(name).is_some_and(|m| m.config.materialized == Materialization::Incremental)
            })
            .cloned()
            .collect()
    }

    fn touches_partitioned_models(&self, request: &BuildRequest) -> bool {
        let Ok(dag) = self.dag() else { return false };
        let models = Self::incremental_models(&dag);
        dag.select(&request.select, &request.exclude).is_ok_and(|chosen| chosen.iter().any(|m| models.contains(m)))
    }

    /// What a backfill of `selection` will run, checked before any run: the partition runs,
    /// `(first, last)` each (see [`runs_of`]), and the incremental models each builds, whose
    /// parents must be built.
    pub fn plan_backfill(&self, selection: &str, single_run: bool) -> Result<BackfillPlan> {
        let definition = self.partitions_definition().ok_or_else(|| Error::Partition {
            partition: selection.into(),
            message: "there are no partitions yet: load a trip file first".into(),
        })?;
        let days = definition.select(selection)?;
        let dag = self.dag()?;
        let models = Self::incremental_models(&dag);
        if models.is_empty() {
            return Err(Error::Usage("the project has no incremental model to partition".into()));
        }
        self.check_upstream_built(&dag, &models)?;
        Ok(BackfillPlan { runs: runs_of(&days, single_run), models, single_run })
    }

    /// Materializes daily partitions: every run of the plan, going on past a failed one as
    /// Dagster's backfills do (its days are recorded as failed).
    pub async fn materialize(&mut self, selection: &str, single_run: bool) -> Result<Backfill> {
        let plan = self.plan_backfill(selection, single_run)?;
        let mut backfill = Backfill::new(plan.runs.len());
        for &run in &plan.runs {
            backfill.add(run, self.materialize_run(&plan, run).await);
        }
        Ok(backfill)
    }

    /// One partition run of `plan` over the days `first..=last`, recorded in the ledger
    /// whatever its outcome.
    pub async fn materialize_run(&mut self, plan: &BackfillPlan, (first, last): (NaiveDate, NaiveDate)) -> Result<RunRecord> {
        let request = run_request(&plan.models, first, last);
        let command = history::dbt_command(&request);
        let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
        let names = days.iter().map(|d| day_text(*d)).collect();
        match self.run(&request, command, names).await {
            Ok(record) => {
                for day in &days {
                    self.state.partitions.record_success(*day, record.id, &record.started_at, &self.state.fingerprints);
                }
                self.record(Action::Materialize { range: range_text(first, last), single_run: plan.single_run });
                Ok(record)
            }
            Err(e) => {
                if let Some(record) = self.state.runs.last() {
                    let (id, at) = (record.id, record.started_at.clone());
                    for day in &days {
                        self.state.partitions.record_failure(*day, id, &at, &e.to_string());
                    }
                }
                Err(e)
            }
        }
    }

    /// A partition run builds only the incremental models; what they read must exist.
    fn check_upstream_built(&self, dag: &Dag, models: &[String]) -> Result<()> {
        for model in models {
            for parent in dag.parents(model) {
                if !models.contains(parent) && !self.state.warehouse.contains(&RelationName::main(parent)) {
                    return Err(Error::Project {
                        file: self.project.model(model).map(|m| m.path.clone()).unwrap_or_default(),
                        message: format!("{model} reads {parent}, which has not been built yet: build it (or everything) first"),
                    });
                }
            }
        }
        Ok(())
    }

    /// `model` as a full rebuild would make it now, computed without changing anything.
    pub async fn truth(&self, model: &str) -> Result<Table> {
        self.query(&self.compile_full(model).await?.sql).await
    }

    /// Where `model`'s table differs from its truth (a changed row's `old` is the table's, its
    /// `new` the truth's); `None` when the table is too large to compare row by row.
    pub async fn drift(&self, model: &str) -> Result<Option<TableDiff>> {
        let compiled = self.compile_full(model).await?;
        let truth = self.query(&compiled.sql).await?;
        let current = self.state.warehouse.table(&RelationName::main(model));
        Ok(table_diff::diff(current, None, &truth, &compiled.config.unique_key))
    }

    /// `model` compiled as a full refresh (not incremental) with the project's vars.
    async fn compile_full(&self, model: &str) -> Result<template::CompiledModel> {
        compile_live(&self.project, model, &self.compile_context(), &self.state.warehouse).await
    }

    /// What models compile against outside a run: the project's own vars.
    fn compile_context(&self) -> CompileContext {
        CompileContext { vars: self.project.vars.clone(), env: self.env.clone(), ..CompileContext::default() }
    }

    /// The selected models compiled as the next `dbt run` would compile them (`dbt compile`):
    /// incremental where a model is incremental and its table exists; seeds are skipped.
    pub async fn compile_selected(&self, select: &str, exclude: &str, vars: &Vars) -> Result<Vec<template::CompiledModel>> {
        let mut ctx = self.compile_context();
        ctx.vars.extend(vars.clone());
        let project = self.project.with_vars(vars)?;
        let dag = Dag::of(&project, &ctx)?;
        let mut compiled = Vec::new();
        for name in dag.select(select, exclude)? {
            let Some(model) = dag.parsed(&name) else { continue };
            // The graph compiled every model as a first run; an incremental one whose table
            // exists, or one that asks the warehouse, compiles differently.
            let is_incremental = model.config.materialized == Materialization::Incremental
                && self.state.warehouse.contains(&RelationName::main(&name));
            compiled.push(if is_incremental || !model.asked.is_empty() {
                compile_live(&project, &name, &CompileContext { is_incremental, ..ctx.clone() }, &self.state.warehouse).await?
            } else {
                model.clone()
            });
        }
        Ok(compiled)
    }

    /// `dbt ls`: the nodes a selection picks, of the given resource types (all when empty).
    pub fn list(&self, select: &str, exclude: &str, resource_types: &[String], vars: &Vars) -> Result<Vec<crate::dbt::run::Listed>> {
        let mut ctx = self.compile_context();
        ctx.vars.extend(vars.clone());
        let project = self.project.with_vars(vars)?;
        Dag::of(&project, &ctx)?.list(&project, select, exclude, resource_types)
    }

    /// `sql` compiled as `dbt show --inline` compiles it: a model named [`INLINE`] with the
    /// project's refs, sources, macros and vars.
    pub async fn compile_inline(&self, sql: &str) -> Result<String> {
        let mut project = self.project.clone();
        let model = Model { name: INLINE.into(), path: format!("{INLINE}.sql"), sql: sql.into(), description: None, config: Default::default(), package: None };
        project.models.insert(INLINE.into(), model);
        Ok(compile_live(&project, INLINE, &self.compile_context(), &self.state.warehouse).await?.sql)
    }

    /// What `sql`, compiled inline, returns (in its own order); its failures point into `sql`
    /// (`inline_query.sql:line:column`).
    pub async fn query_inline(&self, sql: &str) -> Result<Table> {
        let compiled = self.compile_inline(sql).await?;
        let file = format!("{INLINE}.sql");
        self.query_as(&compiled, |failure| {
            failure.into_error(&file, |message, column| Error::Sql {
                model: INLINE.into(),
                file: file.clone(),
                at: column.and_then(|column| crate::error::locate_column(sql, &column)),
                message,
            })
        })
        .await
    }

    /// Runs a query in the project's dialect; models by name, sources as `source.table`.
    pub async fn query(&self, sql: &str) -> Result<Table> {
        self.query_as(sql, |failure| failure.into_error("query", |message, _| Error::Query(message))).await
    }

    /// Runs `sql`; what fails is the error `failed` makes of it.
    async fn query_as(&self, sql: &str, failed: impl Fn(SqlFailure) -> Error) -> Result<Table> {
        let ctx = self.state.warehouse.context(self.project.dialect, &self.project.aliases()).await?;
        let df = crate::sql::dialect::sql(&ctx, sql).await.map_err(&failed)?;
        collect(df).await.map_err(|e| failed(SqlFailure::of(&e)))
    }
}

/// Batches of `table` without the rows of `month` (by `partition_date`).
fn without_month(table: &Table, month: &str) -> std::result::Result<Vec<datafusion::arrow::array::RecordBatch>, String> {
    use datafusion::arrow::array::{AsArray, BooleanArray};
    use datafusion::arrow::compute::filter_record_batch;
    let mut out = Vec::new();
    for batch in table.batches.iter() {
        let months = typed_column(batch, "partition_date", |c| c.as_string_opt::<i32>()).map_err(|e| format!("the raw trips: {e}"))?;
        let keep: BooleanArray = months.iter().map(|m| Some(m != Some(month))).collect();
        out.push(filter_record_batch(batch, &keep).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The project after `action`, for the actions that change it; refused (and so never
/// recorded) when a model would overwrite a relation the project reads.
fn changed_project(project: &Project, action: &Action, builtins: Builtins) -> Result<Project> {
    let changed = match action {
        Action::Project { name } => builtins(name),
        Action::ProjectFiles { files } => ProjectFiles(files.clone()).parse(),
        Action::Model { name, sql } => {
            let path = project.model(name).map(|m| m.path.clone()).ok_or_else(|| Error::Usage(format!("no model {name}")))?;
            let mut files = project.files.clone();
            files.insert(&path, sql);
            files.parse()
        }
        _ => Ok(project.clone()),
    }?;
    changed.check_reserved_names(&raw_tables())?;
    Ok(changed)
}

/// The tables loaded from outside the project, which no model may replace.
fn raw_tables() -> [RelationName; 2] {
    [trips_relation(), zones_relation()]
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}
