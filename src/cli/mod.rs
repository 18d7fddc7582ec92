//! The `backfill` binary: its arguments read into requests ([`args`]), each command run on
//! the engine over a state folder, its results printed ([`print`]); all work is the engine's.

mod args;
mod print;

use std::path::Path;

use backfill::{LESSON, builtin};
use backfill::{Project, ProjectFiles};
use backfill::DbtCommand;
use backfill::{Error, Result};
use backfill::Engine;
use backfill::{DirStore, State};
use backfill::sample::{self, FileCompression, FileSchema, SampleSpec};
use backfill::query;
use clap::Parser;

use args::{Args, BuildArgs, Command, ListOutput, parse_vars};

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
        return builtin(name);
    }
    let project = ProjectFiles::read_dir(Path::new(name))?.parse()?;
    for warning in &project.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(project)
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

/// The engine `compile` works on: the state's when given (read only), else an empty one.
fn compile_engine(state: Option<&Path>, project: &str) -> Result<(Engine, Option<DirStore>)> {
    match state {
        Some(state) => open(state, project, false).map(|(engine, store)| (engine, Some(store))),
        None => Ok((Engine::new(open_project(project)?, State::default(), builtin), None)),
    }
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
                let loaded = engine.load_trips(&name, read(file)?, month.as_deref())?;
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
        Command::Snapshot(args) => build(args, DbtCommand::Snapshot).await?,
        Command::Test(args) => build(args, DbtCommand::Test).await?,
        Command::Materialize { state, project, partition, single_run } => {
            let (mut engine, mut store) = open(&state, &project, true)?;
            let result = engine.materialize(&partition, single_run).await;
            engine.state.save(&mut store)?;
            // Like a Dagster backfill, the runs go on past a failed one: the good ones are
            // printed, then the failures make the error.
            let backfill = result?;
            for record in &backfill.runs {
                print::run(record);
            }
            backfill.into_result()?;
        }
        Command::Compile { state, project, nodes } => {
            let (engine, _store) = compile_engine(state.as_deref(), &project)?;
            match &nodes.inline {
                Some(sql) => println!("Compiled inline node is:\n{}", engine.compile_inline(sql).await?.trim()),
                None => {
                    for model in nodes.models(&engine).await? {
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
            let first_rows = |rows: &backfill::Table| query::to_text_table(&query::slice(rows, 0, limit));
            match &nodes.inline {
                Some(sql) => print!("Previewing inline node:\n{}", first_rows(&engine.query_inline(sql).await?)),
                None => {
                    for model in nodes.models(&engine).await? {
                        print!("Previewing node '{}':\n{}\n", model.name, first_rows(&engine.query(&model.sql).await?));
                    }
                }
            }
        }
        Command::Partitions { state, project } => {
            let (engine, _store) = open(&state, &project, false)?;
            for info in engine.partitions() {
                let detail = match &info.status {
                    backfill::PartitionStatus::Missing => String::new(),
                    backfill::PartitionStatus::Materialized { run_id, at }
                    | backfill::PartitionStatus::Stale { run_id, at } => format!(" run {run_id} at {at}"),
                    backfill::PartitionStatus::Failed { run_id, at, error } => {
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
            let zip = backfill::export::project_zip(&open_project(&project)?, &start_date, backfill_policy.into())?;
            std::fs::write(&out, zip).map_err(|e| Error::Usage(format!("{}: {e}", out.display())))?;
            println!("wrote {}", out.display());
        }
        Command::Runs { state } => {
            let store = DirStore::open(&state, false)?;
            let loaded = State::load(&store)?;
            for record in &loaded.runs {
                print::run(record);
            }
        }
    }
    Ok(())
}

/// One dbt command over the state: recorded, saved (a failed run too), printed.
async fn build(args: BuildArgs, command: DbtCommand) -> Result<()> {
    let request = args.request(command)?;
    let (mut engine, mut store) = open(&args.state, &args.project, true)?;
    let recorded = engine.state.runs.len();
    let result = engine.build(&request).await;
    engine.state.save(&mut store)?;
    // A failed run is printed too, as dbt prints every result before the error.
    if let Some(record) = engine.state.runs.get(recorded) {
        print::run(record);
    }
    result.map(drop)
}
