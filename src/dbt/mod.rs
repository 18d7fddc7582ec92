//! A generic dbt engine, knowing nothing of the data it runs on or of the course: a project's files, its
//! templates compiled with dbt's context, the DAG and node selection, materializations,
//! seeds and data tests, run history and row diffs.

pub mod project;
pub mod request;
pub mod import;
pub mod template;
pub mod run;
pub mod table_diff;
pub mod history;
// Used by the page and its worker only: natively nothing calls it, and the wasm build is
// where its dead code would show.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub mod lineage;
