//! One error type for the engine. Every variant says what went wrong and where, so the CLI can
//! print it on one line and the page can show it next to the thing that failed.

use std::fmt;

use crate::limits::Limit;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a project file something went wrong (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One partition run of a backfill that failed: its partitions (`START` or `START..END`) and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FailedRun {
    pub partitions: String,
    pub error: Box<Error>,
}

fn others_kept(total: usize, failed: usize) -> String {
    match total - failed.min(total) {
        0 => String::new(),
        1 => " (the other one was materialized)".into(),
        n => format!(" (the other {n} were materialized)"),
    }
}

/// Serializable, so the page's worker can hand it to the page as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// A model or macro could not be rendered by the template engine.
    #[error("{location}: {message} ({node})")]
    Template {
        /// `model m` or `test t`.
        node: String,
        location: Location,
        message: String,
    },
    /// A model's compiled SQL failed to plan or execute; `at` is the (line, column) in the
    /// model's file of the name the error is about, when it can be found there.
    #[error("{file}{}: model {model}: {message}", at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Sql {
        model: String,
        file: String,
        at: Option<(usize, usize)>,
        message: String,
    },
    /// The project itself is inconsistent: unknown refs, cycles, bad YAML, bad config.
    #[error("{file}: {message}")]
    Project { file: String, message: String },
    /// A data file could not be ingested.
    #[error("{file}: {message}")]
    Ingest { file: String, message: String },
    /// A dbt data test found failing rows.
    #[error("test {test} failed: {failures} failing row(s)")]
    TestFailed { test: String, failures: usize },
    /// A partition key or range was malformed or outside the definition.
    #[error("partition {partition}: {message}")]
    Partition { partition: String, message: String },
    /// Some runs of a backfill failed; the others went on and are kept, as in Dagster.
    #[error("{} of {total} partition runs failed{}: {}", failed.len(), others_kept(*total, failed.len()), failed.iter().map(|f| format!("{}: {}", f.partitions, f.error)).collect::<Vec<_>>().join("; "))]
    PartitionRunsFailed { total: usize, failed: Vec<FailedRun> },
    /// The persisted state could not be read or written.
    #[error("state {path}: {message}")]
    State { path: String, message: String },
    /// A query typed by the user (CLI `query`, page API) failed.
    #[error("query: {0}")]
    Query(String),
    /// A shared session's action could not be replayed.
    #[error("step {step} of the link ({action}): {message}")]
    Replay { step: usize, action: String, message: String },
    /// The user cancelled an operation at a point where it could stop; `0` says what was kept.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The page's engine worker stopped (a panic, out of memory, or a cancel it could not
    /// honour in time); the page restarts it on the last saved state.
    #[error("the engine stopped ({0}); it was restarted on the last saved state")]
    Stopped(String),
    /// An input over one of Backfill's bounds (`crate::limits`): which, where, and the value
    /// when it is known.
    #[error("{}", limit.message(place, *value))]
    Limit {
        limit: Limit,
        place: String,
        value: Option<u64>,
    },
    /// Bad arguments to an engine call (vars JSON, selection syntax, generator options).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The (line, column) in `file` that an error points at, when it points there.
    pub fn position_in(&self, file: &str) -> Option<(usize, usize)> {
        match self {
            Error::Template { location, .. } if location.file == file => Some((location.line, location.column)),
            Error::Sql { file: f, at, .. } if f == file => *at,
            _ => None,
        }
    }

    pub fn project(file: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Project {
            file: file.into(),
            message: message.into(),
        }
    }

    pub fn ingest(file: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Ingest {
            file: file.into(),
            message: message.to_string(),
        }
    }

    pub fn state(path: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::State {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// Where in a model's source the column `name` first appears as a whole word (the name an
/// [`SqlFailure::UnknownColumn`] carries): DataFusion reports positions in the compiled SQL,
/// which the user did not write.
pub fn locate_column(source: &str, name: &str) -> Option<(usize, usize)> {
    if name.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    for (index, line) in source.lines().enumerate() {
        let mut from = 0;
        while let Some(found) = line.get(from..).and_then(|rest| rest.find(name)) {
            let start = from + found;
            let end = start + name.len();
            let before = line[..start].chars().next_back();
            let after = line[end..].chars().next();
            if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
                return Some((index + 1, line[..start].chars().count() + 1));
            }
            from = end;
        }
    }
    None
}

/// Why a SQL statement failed: one of Backfill's bounds (found by type in DataFusion's error
/// chain, or met before planning), a column its inputs lack (DataFusion's typed
/// `FieldNotFound`: its name, to find in the source), or DataFusion's own message.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlFailure {
    Limit { limit: Limit, value: Option<u64> },
    UnknownColumn { name: String, message: String },
    Message(String),
}

impl SqlFailure {
    pub fn of(err: &datafusion::error::DataFusionError) -> SqlFailure {
        use datafusion::common::SchemaError;
        use datafusion::error::DataFusionError;
        use datafusion::sql::sqlparser::parser::ParserError;
        let root = err.find_root();
        if let DataFusionError::SchemaError(schema, _) = root
            && let SchemaError::FieldNotFound { field, .. } = schema.as_ref()
        {
            return SqlFailure::UnknownColumn { name: field.name.clone(), message: describe_datafusion(err) };
        }
        match root {
            DataFusionError::ResourcesExhausted(_) => SqlFailure::Limit { limit: Limit::QueryMemory, value: None },
            DataFusionError::SQL(parse, _) if matches!(**parse, ParserError::RecursionLimitExceeded) => {
                SqlFailure::Limit { limit: Limit::SqlDepth, value: None }
            }
            _ => SqlFailure::Message(describe_datafusion(err)),
        }
    }

    /// The error of `place` (a model's file, `query`): a bound is named with its place; any
    /// other failure is what `sql` makes of DataFusion's message and the unknown column's name.
    pub fn into_error(self, place: &str, sql: impl FnOnce(String, Option<String>) -> Error) -> Error {
        match self {
            SqlFailure::Limit { limit, value } => limit.exceeded(value, place),
            SqlFailure::UnknownColumn { name, message } => sql(message, Some(name)),
            SqlFailure::Message(message) => sql(message, None),
        }
    }

    /// The message with `context` before it (a microbatch's batch, a unique key); a bound is
    /// named as it is.
    pub fn within(self, context: &str) -> SqlFailure {
        match self {
            SqlFailure::Message(message) => SqlFailure::Message(format!("{context}: {message}")),
            SqlFailure::UnknownColumn { name, message } => SqlFailure::UnknownColumn { name, message: format!("{context}: {message}") },
            limit => limit,
        }
    }
}

impl From<String> for SqlFailure {
    fn from(message: String) -> SqlFailure {
        SqlFailure::Message(message)
    }
}

impl From<Error> for SqlFailure {
    fn from(error: Error) -> SqlFailure {
        match error {
            Error::Limit { limit, value, .. } => SqlFailure::Limit { limit, value },
            other => SqlFailure::Message(other.to_string()),
        }
    }
}

impl fmt::Display for SqlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlFailure::Limit { limit, value } => f.write_str(&limit.message("the statement", *value)),
            SqlFailure::UnknownColumn { message, .. } | SqlFailure::Message(message) => f.write_str(message),
        }
    }
}

/// DataFusion and Arrow errors only ever reach the user through a variant that says which
/// model, file or query they came from. What they say is the innermost error's own message
/// (DataFusion's `message`, without its kind's prefix): the contexts around it ("Optimizer rule
/// … failed") say where in DataFusion it arose, which the user cannot act on.
pub fn describe_datafusion(err: &datafusion::error::DataFusionError) -> String {
    use datafusion::error::DataFusionError;
    use datafusion::sql::sqlparser::parser::ParserError;
    let text = match err.find_root() {
        DataFusionError::SQL(parse, _) => match parse.as_ref() {
            ParserError::ParserError(text) | ParserError::TokenizerError(text) => text.clone(),
            other => other.to_string(),
        },
        root => root.message().into_owned(),
    };
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_columns_are_found_in_the_source() {
        let source = "select trip_id,\n  no_such_column_x, no_such_column\nfrom t";
        assert_eq!(locate_column(source, "no_such_column"), Some((2, 21)));
        assert_eq!(locate_column(source, "zzz"), None);
        assert_eq!(locate_column("select \"a b\", x\nfrom t", "a b"), Some((1, 9)));
        // Names all but blank are found, and a blank one is not looked for (it looped on `find("")`).
        assert_eq!(locate_column("select \" x\"\nfrom t", " x"), Some((1, 9)));
        assert_eq!(locate_column("select \"\"\"\"", "\""), Some((1, 8)));
        assert_eq!(locate_column("select 1", ""), None);
    }

    #[tokio::test]
    async fn an_unknown_column_is_known_by_type_not_by_message() {
        let ctx = datafusion::prelude::SessionContext::new();
        let error = ctx.sql("select no_such_column from (select 1 as a) t").await.expect_err("no such column");
        let failure = SqlFailure::of(&error);
        let SqlFailure::UnknownColumn { name, message } = &failure else { panic!("{failure:?}") };
        assert_eq!(name, "no_such_column");
        assert!(message.contains("no_such_column"), "{message}");
        let error = ctx.sql("select no_such_function(a) from (select 1 as a) t").await.expect_err("no such function");
        assert!(matches!(SqlFailure::of(&error), SqlFailure::Message(m) if m.contains("no_such_function")));
    }

    /// The innermost error's own words: no kind prefix, no rule that wraps it.
    #[tokio::test]
    async fn datafusion_errors_say_only_what_went_wrong() {
        let ctx = datafusion::prelude::SessionContext::new();
        let error = ctx.sql("select * from nowhere").await.expect_err("no such table");
        assert_eq!(describe_datafusion(&error), "table 'datafusion.public.nowhere' not found");
        let error = ctx.sql("select 1 +").await.expect_err("unfinished");
        assert_eq!(describe_datafusion(&error), "Expected: an expression, found: EOF");
        let wrapped = error.context("Optimizer rule 'duckdb_semantics' failed");
        assert_eq!(describe_datafusion(&wrapped), "Expected: an expression, found: EOF");
    }
}
