//! Snapshots (`{% snapshot %}`): a query's rows kept as type-2 history, as dbt's snapshot
//! materialization and dbt-duckdb's merge write it. The first run stores every row with
//! `dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from` and an open `dbt_valid_to`; a later run
//! closes the current version of each changed row (and, with `hard_deletes: invalidate` or
//! `new_record`, of each row gone from the query) and adds the new versions; `new_record` also
//! adds a version marking each deletion (`dbt_is_deleted`). The staging SQL is dbt's
//! (`snapshot_staging_table`), so change detection, nulls and keys behave as in dbt.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::prelude::SessionContext;

use super::materialize::{Changes, align, quote};
use crate::dbt::project::{HardDeletes, SnapshotConfig, SnapshotStrategy};
use crate::dbt::template::CompiledModel;
use crate::error::SqlFailure;
use crate::sql::warehouse::{RelationName, Table, Warehouse, collect};

/// The columns dbt adds, in the order it adds them.
const META: [&str; 4] = ["dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to"];
/// The column `hard_deletes: new_record` adds after them: 'True' on a version marking a deletion.
const IS_DELETED: &str = "dbt_is_deleted";

/// Runs snapshot `compiled`, whose query has `columns`, into `warehouse` at `now` (the run's
/// time, one value for the whole run as DuckDB's `now()` is within a transaction).
pub async fn snapshot(
    warehouse: &mut Warehouse,
    ctx: &SessionContext,
    compiled: &CompiledModel,
    columns: &[String],
    now: chrono::NaiveDateTime,
) -> Result<Changes, SqlFailure> {
    let config = compiled.config.snapshot.as_ref().ok_or_else(|| SqlFailure::from("a snapshot without its config".to_string()))?;
    let relation = RelationName::main(&compiled.name);
    let sql = Sql::new(config, &compiled.config.unique_key, &compiled.name, now);
    let Some(target) = warehouse.table(&relation).cloned() else {
        let table = query(ctx, &sql.first_run(&compiled.sql)).await?;
        let rows = table.num_rows();
        warehouse.put_table(relation, table.clone());
        return Ok(Changes { inserted: rows, rows_after: rows, written: Some(table), ..Changes::default() });
    };
    let needed = META.iter().chain((config.hard_deletes == HardDeletes::NewRecord).then_some(&IS_DELETED));
    if let Some(missing) = needed.into_iter().find(|c| target.schema.column_with_name(c).is_none()) {
        return Err(SqlFailure::from(format!(
            "{relation} is not a snapshot table (it has no {missing} column); drop it or rename the snapshot"
        )));
    }
    let target_columns: Vec<String> = target.schema.fields().iter().map(|f| f.name().clone()).collect();
    let changed = sql.changed(columns, &target_columns);
    let staging = sql.staging(&compiled.sql, &changed);
    let closed = query(ctx, &format!("{staging} {}", sql.closed_target(&target_columns))).await?;
    let inserted = query(ctx, &format!("{staging} {}", sql.insertions(columns, &target_columns, &changed))).await?;
    // New columns of the query go after the target's, as dbt's `alter table … add column`.
    let mut fields: Vec<Field> = target.schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    for field in inserted.schema.fields() {
        if !fields.iter().any(|f| f.name() == field.name()) {
            fields.push(field.as_ref().clone().with_nullable(true));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let closed = align(&closed, &schema)?;
    let new_versions = align(&inserted, &schema)?;
    let updated = count_closed(&target, &closed);
    let mut batches = closed.batches.to_vec();
    batches.extend(new_versions.batches.iter().cloned());
    let table = Table::new(schema, batches);
    let rows_after = table.num_rows();
    warehouse.put_table(relation, table);
    Ok(Changes { inserted: new_versions.num_rows(), updated, rows_after, written: Some(new_versions), ..Changes::default() })
}

/// The target's versions this run closed: its open rows before, less those still open.
fn count_closed(before: &Table, after: &Table) -> usize {
    let open = |table: &Table| {
        table
            .batches
            .iter()
            .filter_map(|b| b.column_by_name("dbt_valid_to").map(|c| c.null_count()))
            .sum::<usize>()
    };
    open(before).saturating_sub(open(after))
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Table, SqlFailure> {
    let df = crate::sql::dialect::sql(ctx, sql).await?;
    collect(df).await.map_err(|e| SqlFailure::of(&e))
}

/// dbt's snapshot SQL for one snapshot.
struct Sql<'a> {
    config: &'a SnapshotConfig,
    keys: &'a [String],
    target: String,
    /// The run's time, as DuckDB's `now()::timestamp`.
    now: String,
    /// What times a version: the configured `updated_at`, or the run's time.
    updated_at: String,
}

impl<'a> Sql<'a> {
    fn new(config: &'a SnapshotConfig, keys: &'a [String], name: &str, now: chrono::NaiveDateTime) -> Sql<'a> {
        let now = format!("CAST('{}' AS TIMESTAMP(6))", now.format("%Y-%m-%d %H:%M:%S%.6f"));
        let updated_at = config.updated_at.clone().unwrap_or_else(|| now.clone());
        Sql { config, keys, target: format!("main.{}", quote(name)), now, updated_at }
    }

    /// `<key> as dbt_unique_key`, or one `dbt_unique_key_<n>` per key of a list.
    fn key_fields(&self) -> String {
        match self.keys {
            [key] => format!("{key} AS dbt_unique_key"),
            keys => keys.iter().enumerate().map(|(i, k)| format!("{k} AS dbt_unique_key_{}", i + 1)).collect::<Vec<_>>().join(", "),
        }
    }

    fn key_names(&self) -> Vec<String> {
        match self.keys {
            [_] => vec!["dbt_unique_key".to_string()],
            keys => (1..=keys.len()).map(|i| format!("dbt_unique_key_{i}")).collect(),
        }
    }

    fn join(&self) -> String {
        self.key_names().iter().map(|k| format!("snapshotted_data.{k} = source_data.{k}")).collect::<Vec<_>>().join(" AND ")
    }

    /// dbt's `md5(coalesce(cast(k as varchar), '') || '|' || … updated_at …)`.
    fn scd_id(&self) -> String {
        let parts: Vec<String> = self
            .keys
            .iter()
            .chain(std::iter::once(&self.updated_at))
            .map(|part| format!("coalesce(CAST({part} AS VARCHAR), '')"))
            .collect();
        format!("md5({})", parts.join(" || '|' || "))
    }

    /// `dbt_valid_to` of a current version: null typed as `updated_at`, or the configured value.
    fn open_valid_to(&self) -> String {
        let current = self.config.valid_to_current.as_deref().unwrap_or("NULL");
        format!("coalesce(nullif({u}, {u}), {current})", u = self.updated_at)
    }

    /// Whether a version is current, in `table`'s columns (unqualified without one).
    fn is_current(&self, table: Option<&str>) -> String {
        let column = table.map_or("dbt_valid_to".to_string(), |t| format!("{t}.dbt_valid_to"));
        match &self.config.valid_to_current {
            None => format!("{column} IS NULL"),
            Some(current) => format!("({column} = {current} OR {column} IS NULL)"),
        }
    }

    fn new_record(&self) -> bool {
        self.config.hard_deletes == HardDeletes::NewRecord
    }

    /// `, 'False' AS dbt_is_deleted` on a version that is not a deletion, with `new_record`.
    fn not_deleted(&self) -> String {
        if self.new_record() { format!(", 'False' AS {IS_DELETED}") } else { String::new() }
    }

    fn first_run(&self, sql: &str) -> String {
        format!(
            "SELECT *, {scd} AS dbt_scd_id, {u} AS dbt_updated_at, {u} AS dbt_valid_from, {open} AS dbt_valid_to{deleted} FROM ({sql}\n) AS sbq",
            scd = self.scd_id(),
            u = self.updated_at,
            open = self.open_valid_to(),
            deleted = self.not_deleted(),
        )
    }

    /// What makes a current version close and a new one start: the strategy's `row_changed`,
    /// or with `new_record`, a current version that marks a deletion (the row is back).
    fn changed(&self, columns: &[String], target_columns: &[String]) -> String {
        let changed = self.row_changed(columns, target_columns);
        if self.new_record() { format!("({changed} OR snapshotted_data.{IS_DELETED} = 'True')") } else { changed }
    }

    /// With `new_record`: `snapshotted_data` is a deletion that is still the latest version,
    /// so the row's absence was already recorded (dbt's test reads `dbt_valid_to_current`
    /// alone when one is set, not null as well).
    fn deletion_recorded(&self) -> String {
        let latest = match &self.config.valid_to_current {
            Some(current) => format!("snapshotted_data.dbt_valid_to = {current}"),
            None => "snapshotted_data.dbt_valid_to IS NULL".to_string(),
        };
        format!("(snapshotted_data.{IS_DELETED} = 'True' AND {latest})")
    }

    /// dbt's `snapshot_hash_arguments([dbt_scd_id, snapshot_get_time()])` for a deletion's version.
    fn deletion_scd_id(&self) -> String {
        format!("md5(coalesce(CAST(snapshotted_data.dbt_scd_id AS VARCHAR), '') || '|' || coalesce(CAST({} AS VARCHAR), ''))", self.now)
    }

    /// Current versions whose key is gone from the query.
    fn gone(&self) -> String {
        let source_key = self.key_names().first().map(|k| format!("source_data.{k}")).unwrap_or_default();
        let recorded = if self.new_record() { format!(" AND NOT {}", self.deletion_recorded()) } else { String::new() };
        format!("FROM snapshotted_data LEFT JOIN deletes_source_data AS source_data ON {} WHERE {source_key} IS NULL{recorded}", self.join())
    }

    /// dbt's `row_changed`: a later `updated_at`, or a checked column that differs (null and a
    /// value differ, two nulls do not; a column the target lacks changes every row).
    fn row_changed(&self, columns: &[String], target_columns: &[String]) -> String {
        match &self.config.strategy {
            SnapshotStrategy::Timestamp => format!("(snapshotted_data.dbt_valid_from < source_data.{})", self.updated_at),
            SnapshotStrategy::Check(listed) => {
                let checked = listed.as_deref().unwrap_or(columns);
                if checked.iter().any(|c| !target_columns.contains(c)) {
                    return "TRUE".to_string();
                }
                let differs: Vec<String> = checked
                    .iter()
                    .map(|c| {
                        let (s, n) = (format!("snapshotted_data.{}", quote(c)), format!("source_data.{}", quote(c)));
                        format!("{s} != {n} OR ((({s} IS NULL) AND NOT ({n} IS NULL)) OR ((NOT {s} IS NULL) AND ({n} IS NULL)))")
                    })
                    .collect();
                if differs.is_empty() { "FALSE".to_string() } else { format!("({})", differs.join(" OR ")) }
            }
        }
    }

    /// The CTEs of dbt's staging table, and `closes`: each current version to close and when.
    fn staging(&self, sql: &str, changed: &str) -> String {
        let keys = self.key_fields();
        let u = &self.updated_at;
        let deletes = match self.config.hard_deletes {
            HardDeletes::Ignore => String::new(),
            HardDeletes::Invalidate | HardDeletes::NewRecord => {
                format!(" UNION ALL SELECT snapshotted_data.dbt_scd_id, {now} AS backfill_valid_to {gone}", now = self.now, gone = self.gone())
            }
        };
        format!(
            "WITH snapshot_query AS ({sql}\n), \
             snapshotted_data AS (SELECT *, {keys} FROM {target} WHERE {current}), \
             insertions_source_data AS (SELECT *, {keys}, {u} AS dbt_updated_at, {u} AS dbt_valid_from, {open} AS dbt_valid_to, \
                 {scd} AS dbt_scd_id FROM snapshot_query), \
             updates_source_data AS (SELECT *, {keys}, {u} AS dbt_valid_to FROM snapshot_query), \
             deletes_source_data AS (SELECT *, {keys} FROM snapshot_query), \
             closes AS (SELECT dbt_scd_id AS backfill_scd_id, min(backfill_valid_to) AS backfill_valid_to FROM ( \
                 SELECT snapshotted_data.dbt_scd_id, source_data.dbt_valid_to AS backfill_valid_to \
                 FROM updates_source_data AS source_data JOIN snapshotted_data ON {join} WHERE {changed}{deletes}) AS changes \
                 GROUP BY dbt_scd_id)",
            target = self.target,
            current = self.is_current(None),
            open = self.open_valid_to(),
            scd = self.scd_id(),
            join = self.join(),
        )
    }

    /// The target with the versions in `closes` closed, its columns in place.
    fn closed_target(&self, target_columns: &[String]) -> String {
        let select: Vec<String> = target_columns
            .iter()
            .map(|c| match c.as_str() {
                "dbt_valid_to" => "CASE WHEN closes.backfill_scd_id IS NULL THEN t.dbt_valid_to ELSE closes.backfill_valid_to END AS dbt_valid_to"
                    .to_string(),
                _ => format!("t.{}", quote(c)),
            })
            .collect();
        format!(
            "SELECT {} FROM {} AS t LEFT JOIN closes ON closes.backfill_scd_id = t.dbt_scd_id AND {}",
            select.join(", "),
            self.target,
            self.is_current(Some("t")),
        )
    }

    /// New rows and the new versions of changed ones; with `new_record`, a version marking
    /// each deletion, its columns the target's version's (the query's new ones null).
    fn insertions(&self, columns: &[String], target_columns: &[String], changed: &str) -> String {
        let select: Vec<String> =
            columns.iter().map(|c| quote(c)).chain(META.iter().map(|c| c.to_string())).map(|c| format!("source_data.{c}")).collect();
        let snapshotted_key = self.key_names().first().map(|k| format!("snapshotted_data.{k}")).unwrap_or_default();
        let insertions = format!(
            "SELECT {}{deleted} FROM insertions_source_data AS source_data LEFT OUTER JOIN snapshotted_data ON {join} \
             WHERE {snapshotted_key} IS NULL OR ({snapshotted_key} IS NOT NULL AND {changed})",
            select.join(", "),
            deleted = self.not_deleted(),
            join = self.join(),
        );
        if !self.new_record() {
            return insertions;
        }
        let kept: Vec<String> = columns
            .iter()
            .map(|c| {
                let table = if target_columns.contains(c) { "snapshotted_data" } else { "source_data" };
                format!("{table}.{}", quote(c))
            })
            .collect();
        format!(
            "{insertions} UNION ALL SELECT {kept}, {scd} AS dbt_scd_id, {now} AS dbt_updated_at, {now} AS dbt_valid_from, \
             snapshotted_data.dbt_valid_to AS dbt_valid_to, 'True' AS {IS_DELETED} {gone}",
            kept = kept.join(", "),
            scd = self.deletion_scd_id(),
            now = self.now,
            gone = self.gone(),
        )
    }
}
