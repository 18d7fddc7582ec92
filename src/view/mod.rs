//! What the page shows, as plain data tested natively: the protocol between page and worker
//! and its snapshot, chart geometry and time travel, SQL highlighting, line diffs and the compiled SQL the
//! project's editor previews.

pub mod protocol;
pub mod snapshot;
pub mod chart;
pub mod highlight;
pub mod line_diff;
pub mod compile_preview;
pub mod travel;
