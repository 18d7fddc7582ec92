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

pub mod error;
pub mod limits;
pub mod serde_dates;

pub mod sql;
pub mod sources;
pub mod dbt;
pub mod orchestrate;
pub mod course;
pub mod view;
#[cfg(target_arch = "wasm32")]
pub mod worker;
#[cfg(target_arch = "wasm32")]
pub mod ui;

pub use error::{Error, Result};
pub use orchestrate::engine::Engine;
