//! What the page shows, as plain data tested natively: the protocol between page and worker
//! and its snapshot, chart geometry, SQL highlighting and line diffs.

pub mod protocol;
pub mod snapshot;
pub mod chart;
pub mod highlight;
pub mod line_diff;
