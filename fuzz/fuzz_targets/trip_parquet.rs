#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| backfill_fuzz::trip_parquet(data));
