//! Trip files in: TLC Parquet/CSV read into the raw tables (their page headers checked first,
//! a decoder's panic contained), the sample generator, and later edits (late trips, fares).

pub mod contain;
pub mod page_headers;
pub mod ingest;
pub mod sample;
pub mod source_edits;
