//! The `backfill` binary: natively the command line (the engine for scripts, CI and bigger
//! data); built for wasm32 by Trunk, the browser app.
//! CLI exit codes: 0 success, 1 `error: …` (one line, naming file/model and position), 2 bad usage.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {
    backfill::start_page();
}
