//! The `backfill` binary as a script meets it. One test binary of modules (each binary links
//! the engine again on a cold machine).

mod bad_input;
mod dbt_commands;
mod dbt_packages;
