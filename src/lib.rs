//! Backfill's engine: dbt-style projects with partitioned incremental models, run on
//! DataFusion with DuckDB's SQL semantics. Target-independent: the same code runs natively
//! (CLI, tests) and in the browser (the Leptos page and its engine worker).
//!
//! The folders are the data flow, and each imports only the ones listed before it:
//! [`sql`] is DataFusion speaking DuckDB and the warehouse; [`sources`] brings trip files
//! in; [`dbt`] is a generic dbt engine; [`orchestrate`] adds what Dagster adds (partitions,
//! staleness, replayable actions, saved state, the [`Engine`]); [`course`] is the lesson
//! built on it; [`view`] is what the page renders; the page ([`ui`]), its engine worker
//! ([`worker`]) and the CLI are faces over them. [`error`] and [`limits`] are everyone's.

mod error;
mod limits;
mod serde_dates;

mod sql;
mod sources;
mod dbt;
mod orchestrate;
mod course;
// Used by the page and its worker only: natively nothing calls it, and the wasm build is
// where its dead code would show.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod view;
#[cfg(target_arch = "wasm32")]
mod worker;
#[cfg(target_arch = "wasm32")]
mod ui;

// The crate's face: what the CLI, the integration tests and the fuzz targets may name. Every
// module stays private, so nothing outside reaches past this list into a layer's insides.

// The engine: what it is asked, what it keeps, how it fails.
pub use orchestrate::engine::Engine;
pub use dbt::request::{BuildRequest, DbtCommand, EventTimeRange, Vars};
pub use orchestrate::actions::Action;
pub use orchestrate::state::{MemoryStore, State};
#[cfg(not(target_arch = "wasm32"))]
pub use orchestrate::state::DirStore;
pub use orchestrate::partitions::{DayFingerprints, PartitionStatus, parse_range, window_vars};
pub use dbt::history::{RunRecord, RunStatus};
pub use error::{Error, Result};
pub use limits::Limit;

// The projects it runs: files, their YAML and templates, the built-in ones.
pub use dbt::project::{Project, ProjectFiles, yaml::parse as parse_yaml};
pub use dbt::template::{self, CompileContext, CompiledModel};
pub use dbt::run::{Dag, parse_time};
pub use dbt::import;
pub use course::builtin::{LESSON, LESSON_FIRST_VERSION, LESSON_MICROBATCH, builtin};

// The data it holds and hands back, and the SQL it speaks.
pub use sources::{ingest::EVENT_TIME, sample};
pub use sql::warehouse::{Relation, RelationName, Table};
pub use sql::{dialect, query};
pub use dbt::table_diff::{KeyedRows, TableDiff};

// The course on the engine, and what the page shows of it.
pub use course::{compare, export, lesson, share, time_travel};
pub use view::{chart::daily_points, highlight, protocol::Event, snapshot::snapshot, travel::Travel};
#[cfg(target_arch = "wasm32")]
pub use ui::start as start_page;
#[cfg(target_arch = "wasm32")]
pub use worker::start as start_worker;
