//! What Dagster adds to dbt: daily partitions and their ledger, staleness fingerprints,
//! replayable actions, the state and its stores, and the [`engine::Engine`] the faces call.

pub mod partitions;
pub mod actions;
pub mod state;
pub mod store_names;
pub mod engine;
