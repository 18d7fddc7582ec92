//! Backfill's engine: dbt-style projects with partitioned incremental models, run on
//! DataFusion with DuckDB's SQL semantics. Target-independent: the same code runs natively
//! (CLI, tests) and in the browser (the Leptos UI).
//!
//! Data flows top to bottom: [`ingest`] fills the [`warehouse`]; a [`project`]'s models are
//! compiled by [`template`] and run by [`run`] in the [`dialect`]; [`partitions`] and
//! [`history`] record what happened; [`state`] persists it all; [`engine`] is the face the
//! CLI and the page call.

pub mod actions;
#[cfg(target_arch = "wasm32")]
pub mod browser_store;
pub mod chart;
pub mod compare;
pub mod contain;
pub mod dialect;
pub mod engine;
pub mod error;
pub mod export;
pub mod highlight;
pub mod history;
pub mod import;
pub mod ingest;
pub mod lesson;
pub mod limits;
pub mod lineage;
pub mod page_headers;
pub mod line_diff;
pub mod partitions;
pub mod project;
pub mod protocol;
pub mod query;
pub mod run;
pub mod sample;
pub mod serde_dates;
pub mod share;
pub mod snapshot;
pub mod source_edits;
pub mod state;
pub mod store_names;
pub mod table_diff;
pub mod template;
pub mod time_travel;
pub mod warehouse;
#[cfg(target_arch = "wasm32")]
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod wire;
#[cfg(target_arch = "wasm32")]
pub mod worker;
