//! The engine in process, on the built-in lesson, generated months and what strangers hand it.
//! One test binary of modules, not one per file: each binary links all of DataFusion, which a
//! cold machine pays for again per binary. (`fuzz_regressions.rs` stays apart: its fuzz
//! targets' allocator aborts the process past 1.5 GB live, counted over every test running.)

mod compiled_sql;
mod end_to_end;
mod lesson;
mod share_links;
mod untrusted_files;
mod untrusted_input;
