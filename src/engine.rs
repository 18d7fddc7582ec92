//! The engine's public face: one project and its state, and the operations the CLI and the page
//! offer (load, build, materialize partitions, query, inspect). Each operation either succeeds
//! whole or leaves the tables as they were; runs are recorded either way.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use web_time::Instant;

use crate::error::{Error, Result};
use crate::history::{self, RunRecord, RunStatus};
use crate::ingest::{self, parse_month};
use crate::partitions::{DailyPartitions, DayFingerprints, PartitionStatus, window_vars};
use crate::project::{Materialization, Project};
use crate::run::{self, BuildRequest, Dag};
use crate::state::{LoadedFile, State};
use crate::template::CompileContext;
use crate::warehouse::{RelationName, Table, collect};

/// The physical names of the raw tables the TLC ingest writes.
pub fn trips_relation() -> RelationName {
    RelationName::main("trips")
}
pub fn zones_relation() -> RelationName {
    RelationName::main("zones")
}

pub struct Engine {
    pub project: Project,
    pub state: State,
    /// What `env_var()` may read.
    pub env: BTreeMap<String, String>,
}

/// One partition and its status, for listing.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionInfo {
    pub day: NaiveDate,
    pub status: PartitionStatus,
}

impl Engine {
    pub fn new(project: Project, state: State) -> Engine {
        Engine { project, state, env: BTreeMap::new() }
    }

    /// Ingests a TLC trip file as its month's slice of the raw trips table (that month's old
    /// rows are replaced), adding the built-in zones if there are none yet.
    pub fn load_trips(&mut self, name: &str, bytes: &[u8], month: Option<&str>) -> Result<LoadedFile> {
        let file = ingest::read_trips(name, bytes, month)?;
        self.put_trips(name, file)
    }

    /// Ingests trips already in Arrow batches of a TLC layout (the page's generated samples).
    pub fn load_trip_batches(&mut self, name: &str, batches: &[datafusion::arrow::array::RecordBatch], month: &str) -> Result<LoadedFile> {
        let file = ingest::trips_from_batches(name, batches, month)?;
        self.put_trips(name, file)
    }

    fn put_trips(&mut self, name: &str, file: ingest::TripFile) -> Result<LoadedFile> {
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
        self.state.fingerprints = DayFingerprints::of_trips(Some(&trips));
        self.state.warehouse.put_table(trips_relation(), trips);
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
        if request.full_refresh && self.touches_partitioned_models(&request.select) {
            // Rebuilt from scratch: no partition run is reflected in the table any more.
            self.state.partitions.clear();
        }
        Ok(record)
    }

    async fn run(&mut self, request: &BuildRequest, command: String, partitions: Vec<String>) -> Result<RunRecord> {
        let started = Instant::now();
        let started_at = now_text();
        let outcome = run::build(&self.project, &self.state.warehouse, request, &self.env).await;
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
        let months: Vec<NaiveDate> = self.state.files.iter().filter_map(|f| parse_month(&f.month).ok()).collect();
        let start = *months.iter().min()?;
        let last = *months.iter().max()?;
        let end = last.checked_add_months(chrono::Months::new(1))?;
        Some(DailyPartitions { start: start.with_day(1)?, end })
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
        let ctx = CompileContext { vars: self.project.vars.clone(), env: self.env.clone(), ..CompileContext::default() };
        Dag::of(&self.project, &ctx)
    }

    /// The incremental models a partition run builds, in build order.
    fn partitioned_models(dag: &Dag) -> Vec<String> {
        dag.order()
            .iter()
            .filter(|name| {
                dag.parsed(name).is_some_and(|m| m.config.materialized == Materialization::Incremental)
            })
            .cloned()
            .collect()
    }

    fn touches_partitioned_models(&self, select: &str) -> bool {
        let Ok(dag) = self.dag() else { return false };
        let models = Self::partitioned_models(&dag);
        select.trim().is_empty() || models.iter().any(|m| select.split([',', ' ']).any(|s| s.trim_matches('+') == m))
    }

    /// Materializes daily partitions: one run per day, or one run over the whole range.
    /// Stops at the first failing run; earlier partitions stay materialized.
    pub async fn materialize(&mut self, range: &str, single_run: bool) -> Result<Vec<RunRecord>> {
        let definition = self.partitions_definition().ok_or_else(|| Error::Partition {
            partition: range.into(),
            message: "there are no partitions yet: load a trip file first".into(),
        })?;
        let days = definition.select(range)?;
        let dag = self.dag()?;
        let models = Self::partitioned_models(&dag);
        if models.is_empty() {
            return Err(Error::Usage("the project has no incremental model to partition".into()));
        }
        self.check_upstream_built(&dag, &models)?;
        let select = models.join(" ");
        let groups: Vec<Vec<NaiveDate>> = if single_run {
            vec![days]
        } else {
            days.into_iter().map(|d| vec![d]).collect()
        };
        let mut records = Vec::new();
        for group in groups {
            let (first, last) = (group[0], group[group.len() - 1]);
            let request = BuildRequest { select: select.clone(), vars: window_vars(first, last), ..BuildRequest::default() };
            let command = history::dbt_command(&request);
            let names = group.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect();
            match self.run(&request, command, names).await {
                Ok(record) => {
                    for day in &group {
                        self.state.partitions.record_success(*day, record.id, &record.started_at, &self.state.fingerprints);
                    }
                    records.push(record);
                }
                Err(e) => {
                    if let Some(record) = self.state.runs.last() {
                        let (id, at) = (record.id, record.started_at.clone());
                        for day in &group {
                            self.state.partitions.record_failure(*day, id, &at, &e.to_string());
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(records)
    }

    /// A partition run builds only the incremental models; what they read must exist.
    fn check_upstream_built(&self, dag: &Dag, models: &[String]) -> Result<()> {
        for model in models {
            for parent in dag.parents(model) {
                if !models.contains(parent) && !self.state.warehouse.contains(&RelationName::main(parent)) {
                    return Err(Error::Project {
                        file: self.project.model(model).map(|m| m.path.clone()).unwrap_or_default(),
                        message: format!("{model} reads {parent}, which has not been built yet: run `backfill build` first"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs a query in the project's dialect; models by name, sources as `source.table`.
    pub async fn query(&self, sql: &str) -> Result<Table> {
        let ctx = self.state.warehouse.context(self.project.dialect, &self.project.aliases()).await?;
        let df = crate::dialect::sql(&ctx, sql).await.map_err(|e| Error::Query(crate::error::describe_datafusion(&e)))?;
        collect(df).await.map_err(|e| Error::Query(crate::error::describe_datafusion(&e)))
    }
}

/// Batches of `table` without the rows of `month` (by `partition_date`).
fn without_month(table: &Table, month: &str) -> std::result::Result<Vec<datafusion::arrow::array::RecordBatch>, String> {
    use datafusion::arrow::array::{AsArray, BooleanArray};
    use datafusion::arrow::compute::filter_record_batch;
    let index = table.schema.index_of("partition_date").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in table.batches.iter() {
        let months = batch.column(index).as_string::<i32>();
        let keep: BooleanArray = months.iter().map(|m| Some(m != Some(month))).collect();
        out.push(filter_record_batch(batch, &keep).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}
