//! Model configuration as dbt defines it. Values arrive in layers (dbt_project.yml folders,
//! schema yml `config:`, the model's own `config(...)`), each a loose key → value map; the last
//! layer wins and [`ModelConfig::resolve`] turns the merged map into checked, typed settings.

use std::collections::BTreeMap;

use serde_json::Value;

pub type ConfigValues = BTreeMap<String, Value>;

/// Configs this engine understands; other keys (tags, docs, …) are accepted and ignored as
/// dbt ignores configs a given adapter does not use.
pub const KNOWN_KEYS: &[&str] = &[
    "materialized",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "event_time",
    "batch_size",
    "begin",
    "lookback",
    "incremental_predicates",
    "full_refresh",
    "enabled",
    "schema",
    "alias",
    "tags",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialization {
    View,
    Table,
    Incremental,
    /// Never built: inlined as a CTE (`__dbt__cte__name`) into every model that refs it.
    Ephemeral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Strategy {
    #[serde(rename = "append")]
    Append,
    #[serde(rename = "merge")]
    Merge,
    #[serde(rename = "delete+insert")]
    DeleteInsert,
    #[serde(rename = "microbatch")]
    Microbatch,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Append => "append",
            Strategy::Merge => "merge",
            Strategy::DeleteInsert => "delete+insert",
            Strategy::Microbatch => "microbatch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    #[default]
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    pub materialized: Materialization,
    pub unique_key: Vec<String>,
    /// As configured; `None` means the adapter's default (see [`ModelConfig::strategy`]).
    pub incremental_strategy: Option<Strategy>,
    pub on_schema_change: OnSchemaChange,
    pub event_time: Option<String>,
    pub batch_size: Option<BatchSize>,
    pub begin: Option<String>,
    pub lookback: u32,
    pub incremental_predicates: Vec<String>,
    pub full_refresh: Option<bool>,
    pub enabled: bool,
}

impl ModelConfig {
    /// Checks and types the merged config map; the error names the offending key.
    pub fn resolve(values: &ConfigValues) -> Result<ModelConfig, String> {
        let text = |key: &str| -> Result<Option<String>, String> {
            match values.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("config {key} must be a string, not {other}")),
            }
        };
        let parse_enum = |key: &str| -> Result<Option<Value>, String> {
            Ok(text(key)?.map(|s| Value::String(s.to_ascii_lowercase())))
        };
        fn enum_of<'a>(key: &'a str, choices: &'a str) -> impl Fn(serde_json::Error) -> String + 'a {
            move |e| format!("config {key}: {e}; expected one of {choices}")
        }
        let materialized = match parse_enum("materialized")? {
            Some(v) => serde_json::from_value(v)
                .map_err(enum_of("materialized", "view, table, incremental, ephemeral"))?,
            None => Materialization::View,
        };
        let incremental_strategy = parse_enum("incremental_strategy")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(enum_of(
                "incremental_strategy",
                "append, merge, delete+insert, microbatch",
            ))?;
        let on_schema_change = parse_enum("on_schema_change")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(enum_of(
                "on_schema_change",
                "ignore, fail, append_new_columns, sync_all_columns",
            ))?
            .unwrap_or_default();
        let batch_size = parse_enum("batch_size")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(enum_of("batch_size", "hour, day, month, year"))?;
        let unique_key = match values.get("unique_key") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(|k| k.trim().to_string()).collect(),
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("config unique_key must be a string or a list of strings")?,
            Some(_) => return Err("config unique_key must be a string or a list of strings".into()),
        };
        let incremental_predicates = match values.get("incremental_predicates") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("config incremental_predicates must be a list of SQL strings")?,
            Some(_) => return Err("config incremental_predicates must be a list of SQL strings".into()),
        };
        let lookback = match values.get("lookback") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("config lookback must be a whole number")?,
        };
        let flag = |key: &str| -> Result<Option<bool>, String> {
            match values.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(other) => Err(format!("config {key} must be true or false, not {other}")),
            }
        };
        let config = ModelConfig {
            materialized,
            unique_key,
            incremental_strategy,
            on_schema_change,
            event_time: text("event_time")?,
            batch_size,
            begin: text("begin")?,
            lookback,
            incremental_predicates,
            full_refresh: flag("full_refresh")?,
            enabled: flag("enabled")?.unwrap_or(true),
        };
        if config.strategy() == Strategy::Merge && config.unique_key.is_empty() {
            return Err("incremental_strategy merge needs a unique_key".into());
        }
        if config.strategy() == Strategy::Microbatch {
            if config.event_time.is_none() {
                return Err("incremental_strategy microbatch needs event_time".into());
            }
            if config.batch_size.is_none() {
                return Err("incremental_strategy microbatch needs batch_size".into());
            }
            if !config.unique_key.is_empty() {
                return Err("incremental_strategy microbatch runs delete+insert per batch on event_time and takes no unique_key; remove unique_key or use merge".into());
            }
        }
        Ok(config)
    }

    /// The strategy an incremental run uses: the configured one, else dbt-duckdb's default,
    /// delete+insert when there is a unique key and append when there is none.
    pub fn strategy(&self) -> Strategy {
        self.incremental_strategy.unwrap_or(if self.unique_key.is_empty() {
            Strategy::Append
        } else {
            Strategy::DeleteInsert
        })
    }
}
/// What a failing data test means: dbt's `severity`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Severity {
    #[default]
    Error,
    Warn,
}

/// A data test's config as dbt's test materialization reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestConfig {
    pub severity: Severity,
    /// `where`: the tested relation is read through `(select * from it where …)`.
    pub where_clause: Option<String>,
    /// `fail_calc` (default `count(*)`), compared by `warn_if` and `error_if` (default `!= 0`).
    pub fail_calc: String,
    pub warn_if: String,
    pub error_if: String,
    pub limit: Option<u64>,
    pub enabled: bool,
}

impl TestConfig {
    pub fn resolve(values: &ConfigValues) -> Result<TestConfig, String> {
        let text = |key: &str, default: &str| -> Result<String, String> {
            match values.get(key) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(format!("config {key} must be text, not {other}")),
            }
        };
        let severity = match text("severity", "error")?.to_ascii_lowercase().as_str() {
            "error" => Severity::Error,
            "warn" => Severity::Warn,
            other => return Err(format!("config severity `{other}` is not one of error, warn")),
        };
        let where_clause = Some(text("where", "")?).filter(|w| !w.trim().is_empty());
        let limit = match values.get("limit") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64().ok_or_else(|| format!("config limit must be a whole number, not {value}"))?),
        };
        let enabled = match values.get("enabled") {
            None | Some(Value::Null) => true,
            Some(value) => value.as_bool().ok_or_else(|| format!("config enabled must be true or false, not {value}"))?,
        };
        Ok(TestConfig {
            severity,
            where_clause,
            fail_calc: text("fail_calc", "count(*)")?,
            warn_if: text("warn_if", "!= 0")?,
            error_if: text("error_if", "!= 0")?,
            limit,
            enabled,
        })
    }
}

