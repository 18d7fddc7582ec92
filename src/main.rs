//! The `backfill` command line: the engine natively, for scripts, CI and bigger data.
//! Exit codes: 0 success, 1 `error: …` (one line, naming file/model and position), 2 bad usage.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {}
