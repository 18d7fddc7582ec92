//! What Dagster adds to dbt: daily partitions and their ledger, staleness fingerprints,
//! replayable actions, the state and its stores, and the [`engine::Engine`] the faces call.

pub mod partitions;
pub mod actions;
pub mod state;
// Used by the page and its worker only: natively nothing calls it, and the wasm build is
// where its dead code would show.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub mod store_names;
pub mod engine;
