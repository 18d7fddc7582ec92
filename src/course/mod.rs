//! The course on top of the engine: its built-in projects, the six lesson steps, strategies
//! side by side, time travel, share links and the dbt + Dagster export. The engine never
//! imports it.

pub mod builtin;
pub mod lesson;
pub mod compare;
pub mod time_travel;
pub mod share;
pub mod export;
