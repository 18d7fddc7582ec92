#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backfill_fuzz::share_link(data));
