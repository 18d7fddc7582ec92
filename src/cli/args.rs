//! The command line as clap reads it, and each flag checked and turned into what the engine
//! takes (`BuildArgs::request`, `parse_vars`): nothing here runs anything.

use std::path::PathBuf;

use backfill::LESSON;
use backfill::{BuildRequest, DbtCommand, EventTimeRange, Vars};
use backfill::parse_time;
use backfill::template::CompiledModel;
use backfill::{Error, Result};
use backfill::Engine;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "backfill", version, about = "Partitioned incremental dbt-style models on DataFusion")]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate a sample TLC yellow-taxi month as Parquet.
    Gen {
        #[arg(long)]
        month: String,
        #[arg(long, default_value_t = 200_000)]
        rows: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "2023")]
        schema: String,
        #[arg(long, default_value = "snappy")]
        compression: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Ingest TLC trip files (Parquet or CSV) into raw_taxis.trips, one month each.
    Load {
        #[arg(long)]
        state: PathBuf,
        /// The month of the file(s), when their names do not carry it.
        #[arg(long)]
        month: Option<String>,
        /// A taxi_zones.csv that replaces the zone table.
        #[arg(long)]
        zones: Option<PathBuf>,
        files: Vec<PathBuf>,
    },
    /// dbt build: the selected seeds, models and snapshots in DAG order, then their tests.
    Build(BuildArgs),
    /// dbt run: the selected models only (no seeds, no tests).
    Run(BuildArgs),
    /// dbt seed: the selected seeds only.
    Seed(BuildArgs),
    /// dbt snapshot: the selected snapshots only.
    Snapshot(BuildArgs),
    /// dbt test: the selected models' data tests, on the tables as they are.
    Test(BuildArgs),
    /// dbt compile: the selected models' compiled SQL (or an --inline query's), printed.
    Compile {
        /// Compile against this state: an incremental model whose table exists compiles
        /// incrementally. Without it, as a first run would.
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long, default_value = LESSON)]
        project: String,
        #[command(flatten)]
        nodes: Nodes,
    },
    /// dbt show: the first rows of each selected model's query, or of an --inline query.
    Show {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = LESSON)]
        project: String,
        #[command(flatten)]
        nodes: Nodes,
        /// Rows to show (dbt's default is 5).
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// dbt ls: the models, seeds, sources and data tests a selection picks.
    #[command(alias = "list")]
    Ls {
        #[arg(long, default_value = LESSON)]
        project: String,
        #[command(flatten)]
        selection: Selection,
        /// Only these: model, seed, source, test (or all).
        #[arg(long, alias = "resource-types", num_args = 1..)]
        resource_type: Vec<String>,
        #[arg(long, short = 'o', value_enum, default_value = "selector")]
        output: ListOutput,
        #[arg(long)]
        vars: Option<String>,
    },
    /// Materialize daily partitions of the incremental models.
    Materialize {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = LESSON)]
        project: String,
        /// START, START..END or START...END as Dagster writes it (days, inclusive).
        #[arg(long)]
        partition: String,
        /// One run over the whole range instead of one run per partition.
        #[arg(long)]
        single_run: bool,
    },
    /// List daily partitions and their status.
    Partitions {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = LESSON)]
        project: String,
    },
    /// Run a SQL query (DuckDB dialect) against the state's tables.
    Query {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = LESSON)]
        project: String,
        #[arg(long, default_value = "table")]
        format: String,
        sql: String,
    },
    /// Show the run history.
    Runs {
        #[arg(long)]
        state: PathBuf,
    },
    /// Write the project as a dbt project zip (dbt-duckdb profile, Dagster definitions, README).
    Export {
        #[arg(long, default_value = LESSON)]
        project: String,
        /// First day of the daily partitions definition in the Dagster code.
        #[arg(long, default_value = "2023-03-01")]
        start_date: String,
        /// How Dagster launches a backfill: one run per range of days (dagster-dbt's default for
        /// daily partitions) or one run per partition.
        #[arg(long, value_enum, default_value = "single-run")]
        backfill_policy: PolicyArg,
        #[arg(long)]
        out: PathBuf,
    },
}

/// `ls --output`, as dbt names its formats.
#[derive(Clone, Copy, ValueEnum)]
pub enum ListOutput {
    Selector,
    Name,
    Path,
    Json,
}

/// `export --backfill-policy`, in Dagster's words.
#[derive(Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    SingleRun,
    RunPerPartition,
}

impl From<PolicyArg> for backfill::export::BackfillPolicy {
    fn from(policy: PolicyArg) -> Self {
        match policy {
            PolicyArg::SingleRun => backfill::export::BackfillPolicy::SingleRun,
            PolicyArg::RunPerPartition => backfill::export::BackfillPolicy::RunPerPartition,
        }
    }
}

/// What `build`, `run`, `seed` and `test` take, as dbt's commands do.
#[derive(clap::Args)]
pub struct BuildArgs {
    #[arg(long)]
    pub state: PathBuf,
    #[arg(long, default_value = LESSON)]
    pub project: String,
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long)]
    pub full_refresh: bool,
    /// Stop at the first failure (otherwise only what reads a failed node is skipped).
    #[arg(long, short = 'x')]
    pub fail_fast: bool,
    /// Vars as a YAML or JSON object, as dbt takes them: '{min_date: 2023-03-04}'.
    #[arg(long)]
    pub vars: Option<String>,
    /// Microbatch models: first batch's time (YYYY-MM-DD[ HH:MM:SS]); default per dbt.
    #[arg(long)]
    pub event_time_start: Option<String>,
    /// Microbatch models: the end (exclusive); default now.
    #[arg(long)]
    pub event_time_end: Option<String>,
}

impl BuildArgs {
    /// The request this dbt command is: flags checked and read (`--vars` as YAML, event times).
    pub fn request(&self, command: DbtCommand) -> Result<BuildRequest> {
        let event_time = EventTimeRange {
            start: self.event_time_start.as_deref().map(|t| parse_event_time("--event-time-start", t)).transpose()?,
            end: self.event_time_end.as_deref().map(|t| parse_event_time("--event-time-end", t)).transpose()?,
        };
        Ok(BuildRequest {
            command,
            select: self.selection.select(),
            exclude: self.selection.exclude(),
            full_refresh: self.full_refresh,
            fail_fast: self.fail_fast,
            vars: parse_vars(self.vars.as_deref())?,
            event_time,
        })
    }
}

/// dbt's node selection, as every command that picks nodes takes it.
#[derive(clap::Args)]
pub struct Selection {
    /// dbt's selection: `a b` (union), `a,b` (intersection), `+a`, `a+`, `2+a`, `a+1`, `@a`,
    /// `tag:x`, `path:models/marts`, `config.materialized:incremental`, `source:raw+`.
    #[arg(long, short = 's', num_args = 1.., value_delimiter = None)]
    pub select: Vec<String>,
    /// What to leave out of the selection, the same syntax.
    #[arg(long, num_args = 1.., value_delimiter = None)]
    pub exclude: Vec<String>,
}

impl Selection {
    pub fn select(&self) -> String {
        self.select.join(" ")
    }

    pub fn exclude(&self) -> String {
        self.exclude.join(" ")
    }
}

/// What `compile` and `show` work on: the selected models, or SQL given inline.
#[derive(clap::Args)]
pub struct Nodes {
    #[command(flatten)]
    pub selection: Selection,
    /// SQL with refs and sources, instead of the project's models.
    #[arg(long, conflicts_with = "select")]
    pub inline: Option<String>,
    #[arg(long)]
    pub vars: Option<String>,
}

impl Nodes {
    /// The selected models, compiled as the next run would compile them.
    pub async fn models(&self, engine: &Engine) -> Result<Vec<CompiledModel>> {
        engine.compile_selected(&self.selection.select(), &self.selection.exclude(), &parse_vars(self.vars.as_deref())?).await
    }
}

/// `--vars` as dbt reads it: a YAML mapping (JSON is YAML too).
pub fn parse_vars(vars: Option<&str>) -> Result<Vars> {
    let Some(text) = vars else { return Ok(Vars::new()) };
    match backfill::parse_yaml("--vars", text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::Usage(format!("--vars must be a mapping, like '{{min_date: 2023-03-04}}', not `{text}`"))),
        Err(e) => Err(Error::Usage(e.to_string())),
    }
}

fn parse_event_time(flag: &str, text: &str) -> Result<chrono::NaiveDateTime> {
    parse_time(text).ok_or_else(|| Error::Usage(format!("{flag} '{text}' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS")))
}

