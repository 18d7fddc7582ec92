//! The browser app's engine worker (`crate::worker`), built by Trunk for wasm32 beside the
//! page; natively there is nothing to run.

#[cfg(target_arch = "wasm32")]
fn main() {
    backfill::start_worker();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("backfill-worker is the browser app's engine worker; natively, use `backfill`");
    std::process::exit(2);
}
