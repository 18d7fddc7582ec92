//! Argument parsing and output for the `backfill` binary; all work is the engine's.

use std::path::{Path, PathBuf};

use backfill::course::builtin::{LESSON, builtin};
use backfill::dbt::project::{Project, ProjectFiles};
use backfill::dbt::request::{BuildRequest, DbtCommand, EventTimeRange, Vars};
use backfill::dbt::run::parse_time;
use backfill::dbt::template::CompiledModel;
use backfill::error::{Error, Result};
use backfill::orchestrate::engine::Engine;
use backfill::orchestrate::state::{DirStore, State};
use backfill::sources::sample::{self, FileCompression, FileSchema, SampleSpec};
use backfill::sql::query;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "backfill", version, about = "Partitioned incremental dbt-style models on DataFusion")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// dbt build: the selected seeds and models in DAG order, then their tests.
    Build(BuildArgs),
    /// dbt run: the selected models only (no seeds, no tests).
    Run(BuildArgs),
    /// dbt seed: the selected seeds only.
    Seed(BuildArgs),
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
enum ListOutput {
    Selector,
    Name,
    Path,
    Json,
}

/// `export --backfill-policy`, in Dagster's words.
#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    SingleRun,
    RunPerPartition,
}

impl From<PolicyArg> for backfill::course::export::BackfillPolicy {
    fn from(policy: PolicyArg) -> Self {
        match policy {
            PolicyArg::SingleRun => backfill::course::export::BackfillPolicy::SingleRun,
            PolicyArg::RunPerPartition => backfill::course::export::BackfillPolicy::RunPerPartition,
        }
    }
}

/// What `build`, `run`, `seed` and `test` take, as dbt's commands do.
#[derive(clap::Args)]
struct BuildArgs {
    #[arg(long)]
    state: PathBuf,
    #[arg(long, default_value = LESSON)]
    project: String,
    #[command(flatten)]
    selection: Selection,
    #[arg(long)]
    full_refresh: bool,
    /// Stop at the first failure (otherwise only what reads a failed node is skipped).
    #[arg(long, short = 'x')]
    fail_fast: bool,
    /// Vars as a YAML or JSON object, as dbt takes them: '{min_date: 2023-03-04}'.
    #[arg(long)]
    vars: Option<String>,
    /// Microbatch models: first batch's time (YYYY-MM-DD[ HH:MM:SS]); default per dbt.
    #[arg(long)]
    event_time_start: Option<String>,
    /// Microbatch models: the end (exclusive); default now.
    #[arg(long)]
    event_time_end: Option<String>,
}

/// dbt's node selection, as every command that picks nodes takes it.
#[derive(clap::Args)]
struct Selection {
    /// dbt's selection: `a b` (union), `a,b` (intersection), `+a`, `a+`, `2+a`, `a+1`, `@a`,
    /// `tag:x`, `path:models/marts`, `config.materialized:incremental`, `source:raw+`.
    #[arg(long, short = 's', num_args = 1.., value_delimiter = None)]
    select: Vec<String>,
    /// What to leave out of the selection, the same syntax.
    #[arg(long, num_args = 1.., value_delimiter = None)]
    exclude: Vec<String>,
}

impl Selection {
    fn select(&self) -> String {
        self.select.join(" ")
    }

    fn exclude(&self) -> String {
        self.exclude.join(" ")
    }
}

/// What `compile` and `show` work on: the selected models, or SQL given inline.
#[derive(clap::Args)]
struct Nodes {
    #[command(flatten)]
    selection: Selection,
    /// SQL with refs and sources, instead of the project's models.
    #[arg(long, conflicts_with = "select")]
    inline: Option<String>,
    #[arg(long)]
    vars: Option<String>,
}

impl Nodes {
    /// The selected models, compiled as the next run would compile them.
    fn models(&self, engine: &Engine) -> Result<Vec<CompiledModel>> {
        engine.compile_selected(&self.selection.select(), &self.selection.exclude(), &parse_vars(self.vars.as_deref())?)
    }
}

pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(args.command)) {
        Ok(()) => 0,
        Err(Error::Usage(message)) => {
            eprintln!("error: {message}");
            2
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn open_project(name: &str) -> Result<Project> {
    if name.starts_with("builtin:") {
        builtin(name)
    } else {
        ProjectFiles::read_dir(Path::new(name))?.parse()
    }
}

/// The engine on the state folder, which stays locked (for writing when `write`) until the
/// returned store is dropped at the end of the command.
fn open(state: &Path, project: &str, write: bool) -> Result<(Engine, DirStore)> {
    let store = DirStore::open(state, write)?;
    let loaded = State::load(&store)?;
    let mut engine = Engine::new(open_project(project)?, loaded, builtin);
    engine.env = std::env::vars().collect();
    Ok((engine, store))
}

/// `--vars` as dbt reads it: a YAML mapping (JSON is YAML too).
fn parse_vars(vars: Option<&str>) -> Result<Vars> {
    let Some(text) = vars else { return Ok(Vars::new()) };
    match backfill::dbt::project::yaml::parse("--vars", text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::Usage(format!("--vars must be a mapping, like '{{min_date: 2023-03-04}}', not `{text}`"))),
        Err(e) => Err(Error::Usage(e.to_string())),
    }
}

/// The engine `compile` works on: the state's when given (read only), else an empty one.
fn compile_engine(state: Option<&Path>, project: &str) -> Result<(Engine, Option<DirStore>)> {
    match state {
        Some(state) => open(state, project, false).map(|(engine, store)| (engine, Some(store))),
        None => Ok((Engine::new(open_project(project)?, State::default(), builtin), None)),
    }
}

fn parse_event_time(flag: &str, text: &str) -> Result<chrono::NaiveDateTime> {
    parse_time(text).ok_or_else(|| Error::Usage(format!("{flag} '{text}' is not YYYY-MM-DD or YYYY-MM-DD HH:MM:SS")))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::ingest(path.display().to_string(), e))
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Gen { month, rows, seed, schema, compression, out } => {
            let spec = SampleSpec { month, rows, seed, schema: FileSchema::parse(&schema)? };
            let batches = sample::generate(&spec)?;
            let bytes = sample::write_parquet(&batches, FileCompression::parse(&compression)?)?;
            std::fs::write(&out, bytes).map_err(|e| Error::Usage(format!("{}: {e}", out.display())))?;
            println!("wrote {} rows of {} to {}", spec.rows, spec.month, out.display());
        }
        Command::Load { state, month, zones, files } => {
            if files.is_empty() && zones.is_none() {
                return Err(Error::Usage("load needs at least one file (or --zones FILE)".into()));
            }
            let (mut engine, mut store) = open(&state, LESSON, true)?;
            if let Some(zones) = zones {
                let rows = engine.load_zones(&zones.display().to_string(), &read(&zones)?)?;
                println!("zones: {rows} rows from {}", zones.display());
            }
            for file in &files {
                let name = file.display().to_string();
                let loaded = engine.load_trips(&name, &read(file)?, month.as_deref())?;
                let s = &loaded.stats;
                println!(
                    "{}: month {}, {} rows, pickups {} to {}, {} outside the month, {} negative amounts",
                    name,
                    loaded.month,
                    s.rows,
                    s.pickup_min.as_deref().unwrap_or("-"),
                    s.pickup_max.as_deref().unwrap_or("-"),
                    s.outside_month,
                    s.negative_amounts
                );
            }
            // Only a load where every file succeeded is saved: a bad file changes nothing.
            engine.state.save(&mut store)?;
        }
        Command::Build(args) => build(args, DbtCommand::Build).await?,
        Command::Run(args) => build(args, DbtCommand::Run).await?,
        Command::Seed(args) => build(args, DbtCommand::Seed).await?,
        Command::Test(args) => build(args, DbtCommand::Test).await?,
        Command::Materialize { state, project, partition, single_run } => {
            let (mut engine, mut store) = open(&state, &project, true)?;
            let result = engine.materialize(&partition, single_run).await;
            engine.state.save(&mut store)?;
            // Like a Dagster backfill, the runs go on past a failed one: the good ones are
            // printed, then the failures make the error.
            let backfill = result?;
            for record in &backfill.runs {
                print_run(record);
            }
            backfill.into_result()?;
        }
        Command::Compile { state, project, nodes } => {
            let (engine, _store) = compile_engine(state.as_deref(), &project)?;
            match &nodes.inline {
                Some(sql) => println!("Compiled inline node is:\n{}", engine.compile_inline(sql)?.trim()),
                None => {
                    for model in nodes.models(&engine)? {
                        println!("Compiled node '{}' is:\n{}\n", model.name, model.sql.trim());
                    }
                }
            }
        }
        Command::Ls { project, selection, resource_type, output, vars } => {
            let engine = Engine::new(open_project(&project)?, State::default(), builtin);
            let listed = engine.list(&selection.select(), &selection.exclude(), &resource_type, &parse_vars(vars.as_deref())?)?;
            for node in listed {
                match output {
                    ListOutput::Selector => println!("{}", node.selector()),
                    ListOutput::Name => println!("{}", node.name),
                    ListOutput::Path => println!("{}", node.original_file_path),
                    ListOutput::Json => println!("{}", serde_json::to_string(&node).map_err(|e| Error::Usage(e.to_string()))?),
                }
            }
        }
        Command::Show { state, project, nodes, limit } => {
            if nodes.selection.select.is_empty() && nodes.inline.is_none() {
                return Err(Error::Usage("show needs --select MODEL or --inline SQL".into()));
            }
            let (engine, _store) = open(&state, &project, false)?;
            let first_rows = |rows: &backfill::sql::warehouse::Table| query::to_text_table(&query::slice(rows, 0, limit));
            match &nodes.inline {
                Some(sql) => print!("Previewing inline node:\n{}", first_rows(&engine.query_inline(sql).await?)),
                None => {
                    for model in nodes.models(&engine)? {
                        print!("Previewing node '{}':\n{}\n", model.name, first_rows(&engine.query(&model.sql).await?));
                    }
                }
            }
        }
        Command::Partitions { state, project } => {
            let (engine, _store) = open(&state, &project, false)?;
            for info in engine.partitions() {
                let detail = match &info.status {
                    backfill::orchestrate::partitions::PartitionStatus::Missing => String::new(),
                    backfill::orchestrate::partitions::PartitionStatus::Materialized { run_id, at }
                    | backfill::orchestrate::partitions::PartitionStatus::Stale { run_id, at } => format!(" run {run_id} at {at}"),
                    backfill::orchestrate::partitions::PartitionStatus::Failed { run_id, at, error } => {
                        format!(" run {run_id} at {at}: {error}")
                    }
                };
                println!("{} {}{}", info.day.format("%Y-%m-%d"), info.status.name(), detail);
            }
        }
        Command::Query { state, project, format, sql } => {
            let (engine, _store) = open(&state, &project, false)?;
            let table = engine.query(&sql).await?;
            match format.as_str() {
                "csv" => print!("{}", query::to_csv(&table)),
                "table" => print!("{}", query::to_text_table(&table)),
                "json" => println!(
                    "{}",
                    serde_json::to_string(&query::to_json_rows(&table)).unwrap_or_else(|_| "[]".into())
                ),
                other => return Err(Error::Usage(format!("--format {other}: expected csv, table or json"))),
            }
        }
        Command::Export { project, start_date, backfill_policy, out } => {
            chrono::NaiveDate::parse_from_str(&start_date, "%Y-%m-%d")
                .map_err(|_| Error::Usage(format!("--start-date '{start_date}' is not YYYY-MM-DD")))?;
            let zip = backfill::course::export::project_zip(&open_project(&project)?, &start_date, backfill_policy.into())?;
            std::fs::write(&out, zip).map_err(|e| Error::Usage(format!("{}: {e}", out.display())))?;
            println!("wrote {}", out.display());
        }
        Command::Runs { state } => {
            let store = DirStore::open(&state, false)?;
            let loaded = State::load(&store)?;
            for record in &loaded.runs {
                print_run(record);
            }
        }
    }
    Ok(())
}

/// `, 3 batches 2023-03-04..2023-03-06`, or nothing for a model that is not a microbatch.
fn batches_text(batches: &[String]) -> String {
    match batches {
        [] => String::new(),
        [one] => format!(", 1 batch {one}"),
        [first, .., last] => format!(", {} batches {first}..{last}", batches.len()),
    }
}

/// One dbt command over the state: recorded, saved (a failed run too), printed.
async fn build(args: BuildArgs, command: DbtCommand) -> Result<()> {
    let BuildArgs { state, project, selection, full_refresh, fail_fast, vars, event_time_start, event_time_end } = args;
    let event_time = EventTimeRange {
        start: event_time_start.as_deref().map(|t| parse_event_time("--event-time-start", t)).transpose()?,
        end: event_time_end.as_deref().map(|t| parse_event_time("--event-time-end", t)).transpose()?,
    };
    let (mut engine, mut store) = open(&state, &project, true)?;
    let request = BuildRequest {
        command,
        select: selection.select(),
        exclude: selection.exclude(),
        full_refresh,
        fail_fast,
        vars: parse_vars(vars.as_deref())?,
        event_time,
    };
    let recorded = engine.state.runs.len();
    let result = engine.build(&request).await;
    engine.state.save(&mut store)?;
    // A failed run is printed too, as dbt prints every result before the error.
    if let Some(record) = engine.state.runs.get(recorded) {
        print_run(record);
    }
    result.map(drop)
}

fn print_run(record: &backfill::dbt::history::RunRecord) {
    let status = match record.status {
        backfill::dbt::history::RunStatus::Success => "ok",
        backfill::dbt::history::RunStatus::Failed => "FAILED",
        backfill::dbt::history::RunStatus::Warn => "warn",
        backfill::dbt::history::RunStatus::Skipped => "skipped",
    };
    println!("run {} [{}] {} ({} ms) {}", record.id, status, record.started_at, record.duration_ms, record.command);
    for model in &record.models {
        if model.status == backfill::dbt::history::RunStatus::Skipped {
            println!("  {} {}: skipped (something it reads failed)", model.name, model.materialization);
            continue;
        }
        println!(
            "  {} {}{}: +{} ~{} -{} rows, {} after ({} ms{}){}{}",
            model.name,
            model.materialization,
            model.strategy.as_deref().map(|s| format!(" ({s})")).unwrap_or_default(),
            model.rows_inserted,
            model.rows_updated,
            model.rows_deleted,
            model.rows_after,
            model.duration_ms,
            Some(model.phases.text()).filter(|t| !t.is_empty()).map(|t| format!(": {t}")).unwrap_or_default(),
            batches_text(&model.batches),
            model.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    for test in &record.tests {
        println!("  test {}: {}", test.name, test.outcome());
    }
    if let Some(error) = &record.error {
        println!("  error: {error}");
    }
}
