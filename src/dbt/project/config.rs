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
    "predicates",
    "merge_update_columns",
    "merge_exclude_columns",
    "full_refresh",
    "enabled",
    "schema",
    "alias",
    "tags",
    "strategy",
    "updated_at",
    "check_cols",
    "hard_deletes",
    "invalidate_hard_deletes",
    "dbt_valid_to_current",
    "target_schema",
    "target_database",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialization {
    View,
    Table,
    Incremental,
    /// Never built: inlined as a CTE (`__dbt__cte__name`) into every model that refs it.
    Ephemeral,
    /// A `{% snapshot %}`: the query's rows kept as type-2 history ([`SnapshotConfig`]).
    Snapshot,
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
    /// Which columns a merge overwrites on a matched row; the rest keep the row's old values.
    /// (Absent from what earlier versions saved.)
    #[serde(default)]
    pub merge_columns: MergeColumns,
    pub full_refresh: Option<bool>,
    pub enabled: bool,
    /// A snapshot's settings (`None` for every other materialization).
    #[serde(default)]
    pub snapshot: Option<SnapshotConfig>,
}

/// How a snapshot tells a changed row, and what it does with a row gone from its query.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotConfig {
    pub strategy: SnapshotStrategy,
    /// The column (timestamp strategy) or expression (check strategy, optional) that times a
    /// version; without one, a check snapshot times its versions by the run.
    pub updated_at: Option<String>,
    pub hard_deletes: HardDeletes,
    /// SQL for `dbt_valid_to` of current rows, instead of null.
    pub valid_to_current: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SnapshotStrategy {
    /// A row changed when its `updated_at` is later than its current version's.
    Timestamp,
    /// A row changed when one of these columns differs (`None`: every column of the query).
    Check(Option<Vec<String>>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HardDeletes {
    /// A row gone from the query keeps its current version.
    #[default]
    Ignore,
    /// Its current version is closed (`dbt_valid_to` set to the run's time).
    Invalidate,
    /// Its current version is closed and a version marking the deletion added: every version
    /// has `dbt_is_deleted` ('True' or 'False'), and a row back in the query is a new version.
    NewRecord,
}

/// dbt's `merge_update_columns` / `merge_exclude_columns` (one or neither).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MergeColumns {
    /// Every column the new rows have (DuckDB's `UPDATE BY NAME`).
    #[default]
    All,
    Only(Vec<String>),
    AllBut(Vec<String>),
}

impl MergeColumns {
    /// Whether a matched row takes the new value of `column`; names compare as DuckDB's
    /// identifiers do, without regard to case.
    pub fn updates(&self, column: &str) -> bool {
        let listed = |names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case(column));
        match self {
            MergeColumns::All => true,
            MergeColumns::Only(names) => listed(names),
            MergeColumns::AllBut(names) => !listed(names),
        }
    }
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
        /// A config naming one of `choices`, in any case.
        fn choice<T: serde::de::DeserializeOwned>(text: Option<String>, key: &str, choices: &str) -> Result<Option<T>, String> {
            let Some(text) = text else { return Ok(None) };
            serde_json::from_value(Value::String(text.to_ascii_lowercase()))
                .map(Some)
                .map_err(|_| format!("config {key} `{text}` is not one of {choices}"))
        }
        let materialized = choice(text("materialized")?, "materialized", "view, table, incremental, ephemeral, snapshot")?
            .unwrap_or(Materialization::View);
        let incremental_strategy =
            choice(text("incremental_strategy")?, "incremental_strategy", "append, merge, delete+insert, microbatch")?;
        let on_schema_change =
            choice(text("on_schema_change")?, "on_schema_change", "ignore, fail, append_new_columns, sync_all_columns")?
                .unwrap_or_default();
        let batch_size = choice(text("batch_size")?, "batch_size", "hour, day, month, year")?;
        let strings = |key: &str| -> Result<Option<Vec<String>>, String> {
            match values.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|k| k.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| format!("config {key} must be a string or a list of strings")),
                Some(_) => Err(format!("config {key} must be a string or a list of strings")),
            }
        };
        // dbt tests `{% if unique_key %}`: an empty key (`''`, `[]`) is no key, and a run
        // appends. A key named twice joins on it twice, which is joining on it once.
        let mut unique_key: Vec<String> = Vec::new();
        for key in strings("unique_key")?.unwrap_or_default().iter().flat_map(|k| k.split(',')) {
            let key = key.trim();
            if !key.is_empty() && !unique_key.iter().any(|k| k == key) {
                unique_key.push(key.to_string());
            }
        }
        // dbt's older name for them wins, as dbt-duckdb reads `predicates or incremental_predicates`.
        let incremental_predicates = match strings("predicates")? {
            Some(older) if !older.is_empty() => older,
            _ => strings("incremental_predicates")?.unwrap_or_default(),
        };
        let merge_columns = match (strings("merge_update_columns")?, strings("merge_exclude_columns")?) {
            (Some(_), Some(_)) => {
                return Err("a model cannot set both merge_update_columns and merge_exclude_columns".into());
            }
            (Some(only), None) => MergeColumns::Only(only),
            (None, Some(but)) => MergeColumns::AllBut(but),
            (None, None) => MergeColumns::All,
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
            merge_columns,
            full_refresh: flag("full_refresh")?,
            enabled: flag("enabled")?.unwrap_or(true),
            snapshot: None,
        };
        if config.materialized == Materialization::Snapshot {
            let snapshot = SnapshotConfig::resolve(values, &config.unique_key, text, flag)?;
            return Ok(ModelConfig { snapshot: Some(snapshot), ..config });
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

impl SnapshotConfig {
    /// dbt's checks of a snapshot's config, with its messages.
    fn resolve(
        values: &ConfigValues,
        unique_key: &[String],
        text: impl Fn(&str) -> Result<Option<String>, String>,
        flag: impl Fn(&str) -> Result<Option<bool>, String>,
    ) -> Result<SnapshotConfig, String> {
        let strategy = text("strategy")?;
        let (Some(strategy), false) = (strategy, unique_key.is_empty()) else {
            return Err("snapshots must be configured with a 'strategy' and 'unique_key'".into());
        };
        let check_cols = values.get("check_cols").filter(|v| !v.is_null());
        let strategy = match strategy.to_ascii_lowercase().as_str() {
            "timestamp" if check_cols.is_some() => {
                return Err("a snapshot with the timestamp strategy takes no check_cols".into());
            }
            "timestamp" if text("updated_at")?.is_none() => {
                return Err("a snapshot with the timestamp strategy needs updated_at".into());
            }
            "timestamp" => SnapshotStrategy::Timestamp,
            "check" => match check_cols {
                Some(Value::String(all)) if all.eq_ignore_ascii_case("all") => SnapshotStrategy::Check(None),
                Some(Value::Array(columns)) => SnapshotStrategy::Check(Some(
                    columns
                        .iter()
                        .map(|c| c.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or("config check_cols must be 'all' or a list of column names")?,
                )),
                None => return Err("a snapshot with the check strategy needs check_cols".into()),
                Some(_) => return Err("config check_cols must be 'all' or a list of column names".into()),
            },
            other => return Err(format!("snapshot strategy `{other}` is not one of timestamp, check")),
        };
        let hard_deletes = match (text("hard_deletes")?, flag("invalidate_hard_deletes")?) {
            (Some(_), Some(_)) => return Err("a snapshot cannot set both hard_deletes and invalidate_hard_deletes".into()),
            (None, Some(true)) => HardDeletes::Invalidate,
            (None, _) => HardDeletes::Ignore,
            (Some(mode), None) => match mode.as_str() {
                "ignore" => HardDeletes::Ignore,
                "invalidate" => HardDeletes::Invalidate,
                "new_record" => HardDeletes::NewRecord,
                other => return Err(format!("hard_deletes `{other}` is not one of ignore, invalidate, new_record")),
            },
        };
        if values.contains_key("snapshot_meta_column_names") {
            return Err("snapshot_meta_column_names is not supported by Backfill yet: the columns keep dbt's names".into());
        }
        Ok(SnapshotConfig {
            strategy,
            updated_at: text("updated_at")?,
            hard_deletes,
            valid_to_current: text("dbt_valid_to_current")?,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resolve(config: Value) -> Result<ModelConfig, String> {
        let Value::Object(map) = config else { panic!("an object") };
        ModelConfig::resolve(&map.into_iter().collect())
    }

    #[test]
    fn empty_and_repeated_keys_mean_what_they_mean_to_dbt() {
        let keys = |key: Value| resolve(json!({"materialized": "incremental", "unique_key": key})).map(|c| (c.unique_key.clone(), c.strategy()));
        assert_eq!(keys(json!("")), Ok((vec![], Strategy::Append)));
        assert_eq!(keys(json!([])), Ok((vec![], Strategy::Append)));
        assert_eq!(keys(json!(["state", "state"])), Ok((vec!["state".to_string()], Strategy::DeleteInsert)));
        assert_eq!(keys(json!("a, b")), Ok((vec!["a".to_string(), "b".to_string()], Strategy::DeleteInsert)));
        let merge = resolve(json!({"materialized": "incremental", "incremental_strategy": "merge", "unique_key": ""}));
        assert_eq!(merge.map(|c| c.unique_key), Ok(vec![]), "a merge without a key appends, as dbt-duckdb's `ON (FALSE)`");
    }

    #[test]
    fn merge_columns_are_one_list_or_the_other() {
        let columns = |config: Value| resolve(config).map(|c| c.merge_columns);
        assert_eq!(columns(json!({"merge_update_columns": ["a", "b"]})), Ok(MergeColumns::Only(vec!["a".into(), "b".into()])));
        let but = columns(json!({"merge_exclude_columns": ["Label"]})).unwrap_or_else(|e| panic!("{e}"));
        assert!(!but.updates("label") && but.updates("total"), "names compare without case");
        assert_eq!(columns(json!({})), Ok(MergeColumns::All));
        let both = columns(json!({"merge_update_columns": ["a"], "merge_exclude_columns": ["b"]}));
        assert!(both.is_err_and(|e| e.contains("both merge_update_columns and merge_exclude_columns")));
        let bad = columns(json!({"merge_update_columns": [1]}));
        assert!(bad.is_err_and(|e| e.contains("merge_update_columns must be a string or a list of strings")));
    }

    #[test]
    fn predicates_is_dbts_older_name_for_incremental_predicates() {
        let predicates = |config: Value| resolve(config).map(|c| c.incremental_predicates);
        assert_eq!(predicates(json!({"predicates": ["id != 2"]})), Ok(vec!["id != 2".to_string()]));
        assert_eq!(predicates(json!({"predicates": "a > 1", "incremental_predicates": ["b > 1"]})), Ok(vec!["a > 1".to_string()]));
        assert_eq!(predicates(json!({"predicates": [], "incremental_predicates": ["b > 1"]})), Ok(vec!["b > 1".to_string()]));
    }
}
