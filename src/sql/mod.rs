//! DataFusion speaking DuckDB: the dialect every statement goes through, the warehouse of
//! Arrow tables it reads and writes, and values rendered as text.

pub mod dialect;
pub mod warehouse;
pub mod query;
pub mod csv;
