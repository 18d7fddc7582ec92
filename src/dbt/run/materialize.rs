//! Materializations: turning one compiled model into a relation of the working warehouse.
//! DataFusion cannot MERGE or DELETE from memory tables, so incremental strategies are
//! computed as whole new tables (kept rows + new rows); the run swaps them in only once every
//! model has succeeded.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, SortField};
use web_time::Instant;

use crate::dbt::history::Phases;
use crate::dbt::project::{Materialization, MergeColumns, OnSchemaChange, Strategy};
use crate::dbt::template::CompiledModel;
use crate::error::SqlFailure;
use crate::sql::dialect::SqlDialect;
use crate::sql::warehouse::{Aliases, RelationName, Table, Warehouse, collect, collect_with_plan};

/// What a model's run did to its relation.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub inserted: usize,
    pub updated: usize,
    pub deleted: usize,
    pub rows_after: usize,
    /// The model query's physical plan with per-operator metrics.
    pub plan: String,
    /// The rows the run wrote (inserted or replacing others), for the run's table diff.
    pub written: Option<Table>,
}

/// Runs `compiled` into `warehouse`. `incremental` says whether the existing table is updated
/// in place (dbt's `is_incremental()`); otherwise the relation is (re)created.
pub async fn materialize(
    warehouse: &mut Warehouse,
    dialect: SqlDialect,
    aliases: &Aliases,
    compiled: &CompiledModel,
    incremental: bool,
    phases: &mut Phases,
) -> Result<Changes, SqlFailure> {
    let relation = RelationName::main(&compiled.name);
    let start = Instant::now();
    let ctx = warehouse.context(dialect, aliases).await?;
    let df = crate::sql::dialect::sql(&ctx, &compiled.sql).await?;
    let planned = phases.lap("plan", start);
    if compiled.config.materialized == Materialization::Ephemeral {
        // Planned, so its SQL is checked here, where its errors point; the models that ref it
        // read it as a CTE.
        return Ok(Changes::default());
    }
    if compiled.config.materialized == Materialization::Snapshot {
        let columns: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        let changes = super::snapshot::snapshot(warehouse, &ctx, compiled, &columns, chrono::Utc::now().naive_utc()).await?;
        phases.lap("snapshot", planned);
        return Ok(changes);
    }
    if compiled.config.materialized == Materialization::View {
        // Planning succeeded, so the view is valid; it is stored as SQL and read lazily.
        warehouse.put_view(relation, compiled.sql.clone());
        return Ok(Changes::default());
    }
    let (new_rows, plan) = collect_with_plan(df).await.map_err(|e| SqlFailure::of(&e))?;
    let executed = phases.lap("execute", planned);
    let existing = warehouse.table(&relation).cloned();
    let (table, changes) = match existing {
        Some(target) if incremental => {
            let merged = merge_into(&target, new_rows, compiled, dialect).await?;
            phases.lap("merge", executed);
            merged
        }
        _ => {
            let rows = new_rows.num_rows();
            (new_rows.clone(), Changes { inserted: rows, written: Some(new_rows), ..Default::default() })
        }
    };
    let rows_after = table.num_rows();
    warehouse.put_table(relation, table);
    Ok(Changes { rows_after, plan, ..changes })
}

/// Applies the incremental strategy: the target's kept rows plus the new rows, aligned to
/// the schema `on_schema_change` decides.
async fn merge_into(
    target: &Table,
    new_rows: Table,
    compiled: &CompiledModel,
    dialect: SqlDialect,
) -> Result<(Table, Changes), SqlFailure> {
    let config = &compiled.config;
    let schema = nullable(&evolve_schema(&target.schema, &new_rows.schema, config.on_schema_change)?);
    let target = align(target, &schema)?;
    let new_rows = align(&new_rows, &schema)?;
    let strategy = config.strategy();
    let keys = &config.unique_key;
    let (kept, replaced, new_rows) = match (strategy, compiled.batch) {
        (Strategy::Append, _) => (target.clone(), 0, new_rows),
        (Strategy::Microbatch, Some(batch)) => {
            // dbt-duckdb: delete the batch's slice (within the predicates), insert the new rows in it.
            let column = config.event_time.as_deref().unwrap_or_default();
            let in_batch = batch.predicate(column);
            let mut delete_when = vec![in_batch.clone()];
            delete_when.extend(config.incremental_predicates.iter().map(|p| format!("({p})")));
            let kept = select_rows(&target, &format!("NOT coalesce(({}), false)", delete_when.join(" AND ")), dialect).await?;
            let new_rows = select_rows(&new_rows, &in_batch, dialect).await?;
            let replaced = target.num_rows() - kept.num_rows();
            (align(&kept, &schema)?, replaced, align(&new_rows, &schema)?)
        }
        (Strategy::Merge | Strategy::DeleteInsert | Strategy::Microbatch, _) => {
            let predicates = &config.incremental_predicates;
            if strategy == Strategy::Merge {
                check_unique_keys(&new_rows, keys, dialect).await?;
            }
            let kept = rows_not_replaced(&target, &new_rows, keys, predicates, dialect).await?;
            let replaced = target.num_rows() - kept.num_rows();
            let new_rows = match &config.merge_columns {
                MergeColumns::All => new_rows,
                _ if strategy != Strategy::Merge || keys.is_empty() => new_rows,
                columns => align(&merged_rows(&target, &new_rows, keys, predicates, columns, dialect).await?, &schema)?,
            };
            (align(&kept, &schema)?, replaced, new_rows)
        }
    };
    let mut batches: Vec<RecordBatch> = kept.batches.iter().cloned().collect();
    batches.extend(new_rows.batches.iter().cloned());
    let changes = match strategy {
        // A merge updates matched rows in place and inserts the rest.
        Strategy::Merge => Changes {
            inserted: new_rows.num_rows().saturating_sub(replaced),
            updated: replaced,
            ..Default::default()
        },
        _ => Changes { inserted: new_rows.num_rows(), deleted: replaced, ..Default::default() },
    };
    let changes = Changes { written: Some(new_rows.clone()), ..changes };
    Ok((Table::new(schema, batches), changes))
}

/// Target rows that survive: those whose unique key is not among the new rows' keys (or that
/// fail an incremental predicate). Without a key, every row survives.
async fn rows_not_replaced(
    target: &Table,
    new_rows: &Table,
    keys: &[String],
    predicates: &[String],
    dialect: SqlDialect,
) -> Result<Table, SqlFailure> {
    if keys.is_empty() {
        return Ok(target.clone());
    }
    if predicates.is_empty()
        && let Some(kept) = rows_without_keys_of(target, new_rows, keys).map_err(|e| SqlFailure::of(&e.into()))?
    {
        return Ok(kept);
    }
    let mut scratch = Warehouse::default();
    scratch.put_table(RelationName::main("dbt_internal_dest"), target.clone());
    scratch.put_table(RelationName::main("dbt_internal_source"), new_rows.clone());
    let ctx = scratch.context(dialect, &Aliases::new()).await?;
    // The new rows' keys under names of their own, so that a predicate's unqualified column is
    // the target's, as in dbt-duckdb's `delete from target where (key) in (…) and predicate`.
    let join = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("DBT_INTERNAL_DEST.{} = s.backfill_key_{i}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let renamed: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("{} AS backfill_key_{i}", quote(k))).collect();
    let replace_when = if predicates.is_empty() {
        String::new()
    } else {
        format!(
            " OR NOT coalesce(({}), false)",
            predicates.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" AND ")
        )
    };
    let sql = format!(
        "SELECT DBT_INTERNAL_DEST.* FROM dbt_internal_dest AS DBT_INTERNAL_DEST \
         LEFT JOIN (SELECT DISTINCT {keys}, true AS backfill_matched FROM dbt_internal_source) AS s ON {join} \
         WHERE s.backfill_matched IS NULL{replace_when}",
        keys = renamed.join(", "),
    );
    let df = crate::sql::dialect::sql(&ctx, &sql).await.map_err(|f| f.within(&format!("unique_key {}", keys.join(", "))))?;
    collect(df).await.map_err(|e| SqlFailure::of(&e))
}

/// The SQL join above without a DataFusion session (whose set-up dominated a one-day partition's
/// merge): the target's rows whose key is not among the new rows' keys, compared in arrow's row
/// format. A key with a null never matches, as in SQL; float keys (where `=` and bytes disagree
/// on -0.0 and NaN) and keys missing from either table take the SQL path (`None`).
fn rows_without_keys_of(target: &Table, new_rows: &Table, keys: &[String]) -> Result<Option<Table>, ArrowError> {
    let mut fields = Vec::with_capacity(keys.len());
    for key in keys {
        let Some((_, field)) = target.schema.column_with_name(key) else { return Ok(None) };
        if field.data_type().is_floating() || new_rows.schema.column_with_name(key).map(|(_, f)| f.data_type()) != Some(field.data_type()) {
            return Ok(None);
        }
        fields.push(SortField::new(field.data_type().clone()));
    }
    let Ok(converter) = RowConverter::new(fields) else { return Ok(None) };
    let key_columns = |batch: &RecordBatch| -> Vec<ArrayRef> {
        keys.iter().filter_map(|k| batch.column_by_name(k).cloned()).collect()
    };
    let mut new_keys = HashSet::new();
    let mut new_key_rows = Vec::with_capacity(new_rows.batches.len());
    for batch in new_rows.batches.iter() {
        new_key_rows.push(converter.convert_columns(&key_columns(batch))?);
    }
    for rows in &new_key_rows {
        new_keys.extend(rows.iter());
    }
    let mut kept = Vec::with_capacity(target.batches.len());
    for batch in target.batches.iter() {
        let columns = key_columns(batch);
        let rows = converter.convert_columns(&columns)?;
        // The row format encodes null as a value like any other; SQL's `=` never matches it.
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|i| Some(columns.iter().any(|c| c.is_null(i)) || !new_keys.contains(&rows.row(i))))
            .collect();
        kept.push(if keep.true_count() == batch.num_rows() { batch.clone() } else { filter_record_batch(batch, &keep)? });
    }
    Ok(Some(Table::new(Arc::clone(&target.schema), kept)))
}

/// dbt-duckdb's `MERGE … WHEN MATCHED THEN UPDATE SET <columns>` when a model names the
/// columns (`merge_update_columns`, `merge_exclude_columns`): each new row, where it matches a
/// target row on the key (and the predicates, which dbt puts in the `ON`) with the target's
/// values in the columns not updated; the unmatched new rows as they are.
async fn merged_rows(
    target: &Table,
    new_rows: &Table,
    keys: &[String],
    predicates: &[String],
    columns: &MergeColumns,
    dialect: SqlDialect,
) -> Result<Table, SqlFailure> {
    let mut scratch = Warehouse::default();
    scratch.put_table(RelationName::main("dbt_internal_dest"), target.clone());
    scratch.put_table(RelationName::main("dbt_internal_source"), new_rows.clone());
    let ctx = scratch.context(dialect, &Aliases::new()).await?;
    let select: Vec<String> = new_rows
        .schema
        .fields()
        .iter()
        .map(|f| {
            let c = quote(f.name());
            if columns.updates(f.name()) {
                format!("DBT_INTERNAL_SOURCE.{c} AS {c}")
            } else {
                format!("CASE WHEN DBT_INTERNAL_DEST.backfill_matched THEN DBT_INTERNAL_DEST.{c} ELSE DBT_INTERNAL_SOURCE.{c} END AS {c}")
            }
        })
        .collect();
    let on: Vec<String> = keys
        .iter()
        .map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}", k = quote(k)))
        .chain(predicates.iter().map(|p| format!("({p})")))
        .collect();
    let sql = format!(
        "SELECT {} FROM dbt_internal_source AS DBT_INTERNAL_SOURCE \
         LEFT JOIN (SELECT *, true AS backfill_matched FROM dbt_internal_dest) AS DBT_INTERNAL_DEST ON {}",
        select.join(", "),
        on.join(" AND ")
    );
    let df = crate::sql::dialect::sql(&ctx, &sql).await.map_err(|f| f.within("merge_update_columns / merge_exclude_columns"))?;
    collect(df).await.map_err(|e| SqlFailure::of(&e))
}

/// The rows of `table` for which `condition` (SQL over its columns) holds.
async fn select_rows(table: &Table, condition: &str, dialect: SqlDialect) -> Result<Table, SqlFailure> {
    let mut scratch = Warehouse::default();
    scratch.put_table(RelationName::main("dbt_internal_dest"), table.clone());
    let ctx = scratch.context(dialect, &Aliases::new()).await?;
    let sql = format!("SELECT * FROM dbt_internal_dest AS DBT_INTERNAL_DEST WHERE {condition}");
    let df = crate::sql::dialect::sql(&ctx, &sql).await?;
    collect(df).await.map_err(|e| SqlFailure::of(&e))
}

/// dbt's merge fails when two new rows share a key; so does this, naming the key.
async fn check_unique_keys(new_rows: &Table, keys: &[String], dialect: SqlDialect) -> Result<(), SqlFailure> {
    if keys.is_empty() {
        // No key: dbt-duckdb merges `ON (FALSE)`, inserting every row.
        return Ok(());
    }
    let mut scratch = Warehouse::default();
    scratch.put_table(RelationName::main("dbt_internal_source"), new_rows.clone());
    let ctx = scratch.context(dialect, &Aliases::new()).await?;
    let quoted: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    let sql = format!(
        "SELECT {k}, count(*) AS n FROM dbt_internal_source GROUP BY {k} HAVING count(*) > 1 LIMIT 1",
        k = quoted.join(", ")
    );
    let df = crate::sql::dialect::sql(&ctx, &sql).await?;
    let duplicates = collect(df).await.map_err(|e| SqlFailure::of(&e))?;
    if let Some(batch) = duplicates.batches.first() {
        let shown = crate::sql::query::render_row(batch, 0, keys.len());
        return Err(SqlFailure::Message(format!(
            "merge needs unique new rows: unique_key ({}) = ({shown}) appears more than once",
            keys.join(", ")
        )));
    }
    Ok(())
}

pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The schema the target has after this run, as dbt's `on_schema_change` defines it.
fn evolve_schema(target: &SchemaRef, new: &SchemaRef, mode: OnSchemaChange) -> Result<SchemaRef, String> {
    let has = |schema: &SchemaRef, name: &str| schema.fields().iter().any(|f| f.name() == name);
    let added: Vec<&Arc<Field>> = new.fields().iter().filter(|f| !has(target, f.name())).collect();
    let removed: Vec<&Arc<Field>> = target.fields().iter().filter(|f| !has(new, f.name())).collect();
    let names = |fields: &[&Arc<Field>]| fields.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    match mode {
        OnSchemaChange::Ignore => {
            if !removed.is_empty() {
                return Err(format!(
                    "the new rows lack column(s) {} of the existing table (on_schema_change=ignore); run with --full-refresh or set on_schema_change",
                    names(&removed)
                ));
            }
            Ok(Arc::clone(target))
        }
        OnSchemaChange::Fail => {
            let retyped = new.fields().iter().any(|f| {
                target.field_with_name(f.name()).is_ok_and(|t| t.data_type() != f.data_type())
            });
            if added.is_empty() && removed.is_empty() && !retyped {
                Ok(Arc::clone(target))
            } else {
                Err(format!(
                    "the source and target schemas on this incremental model are out of sync (on_schema_change=fail): added [{}], removed [{}]",
                    names(&added),
                    names(&removed)
                ))
            }
        }
        OnSchemaChange::AppendNewColumns => {
            let mut fields: Vec<Field> = target.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(added.iter().map(|f| f.as_ref().clone().with_nullable(true)));
            Ok(Arc::new(Schema::new(fields)))
        }
        OnSchemaChange::SyncAllColumns => Ok(Arc::new(Schema::new(
            new.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
        ))),
    }
}

/// Every column nullable: incremental runs may add rows with nulls to any column.
fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ))
}

/// The same rows in `schema`'s columns: by name, cast to its types, nulls where absent.
pub(super) fn align(table: &Table, schema: &SchemaRef) -> Result<Table, String> {
    let mut batches = Vec::with_capacity(table.batches.len());
    for batch in table.batches.iter() {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let column = match batch.column_by_name(field.name()) {
                Some(column) if column.data_type() == field.data_type() => Arc::clone(column),
                Some(column) => cast(column, field.data_type()).map_err(|e| {
                    format!("column {}: cannot store {} as {}: {e}", field.name(), column.data_type(), field.data_type())
                })?,
                None => new_null_array(field.data_type(), batch.num_rows()),
            };
            columns.push(column);
        }
        batches.push(RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())?);
    }
    Ok(Table::new(Arc::clone(schema), batches))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Date32Array, Float64Array, Int64Array, StringArray};

    use super::*;

    fn table(days: &[Option<i32>], names: &[Option<&str>]) -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("day", datafusion::arrow::datatypes::DataType::Date32, true),
            Field::new("zone", datafusion::arrow::datatypes::DataType::Utf8, true),
            Field::new("n", datafusion::arrow::datatypes::DataType::Int64, true),
            Field::new("x", datafusion::arrow::datatypes::DataType::Float64, true),
        ]));
        let n = days.len() as i64;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(days.to_vec())),
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / 2.0))),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap_or_else(|e| panic!("{e}"));
        Table::new(schema, vec![batch.slice(0, 3), batch.slice(3, days.len() - 3)])
    }

    fn sorted_n(table: &Table) -> Vec<i64> {
        let mut n: Vec<i64> = table
            .batches
            .iter()
            .flat_map(|b| b.column_by_name("n").and_then(|c| c.as_any().downcast_ref::<Int64Array>()).map(|c| c.values().to_vec()).unwrap_or_default())
            .collect();
        n.sort();
        n
    }

    /// The row-format path keeps exactly the rows the SQL anti-join keeps: nulls never match,
    /// composite keys match on every column, a key repeated among the new rows replaces once.
    #[tokio::test]
    async fn merging_by_key_without_sql_keeps_what_the_anti_join_keeps() {
        let target = table(
            &[Some(1), Some(2), None, Some(3), Some(3), Some(4), Some(5)],
            &[Some("a"), Some("a"), Some("a"), Some("a"), Some("b"), None, Some("c")],
        );
        let new_rows = table(&[Some(2), Some(2), None, Some(3), Some(4), Some(9)], &[Some("a"), Some("a"), Some("a"), Some("b"), None, Some("c")]);
        for keys in [vec!["day"], vec!["day", "zone"], vec!["zone"]] {
            let keys: Vec<String> = keys.into_iter().map(String::from).collect();
            let fast = rows_without_keys_of(&target, &new_rows, &keys).unwrap_or_else(|e| panic!("{e}"));
            let fast = fast.unwrap_or_else(|| panic!("{keys:?} takes the row-format path"));
            // A predicate that always holds takes the SQL path.
            let sql = rows_not_replaced(&target, &new_rows, &keys, &["true".into()], SqlDialect::Duckdb).await;
            let sql = sql.unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(sorted_n(&fast), sorted_n(&sql), "keys {keys:?}");
        }
        let by_day = rows_without_keys_of(&target, &new_rows, &["day".to_string()]).ok().flatten();
        assert_eq!(by_day.map(|t| sorted_n(&t)), Some(vec![0, 2, 6]), "days 1 and null and 5 stay");
        assert!(rows_without_keys_of(&target, &new_rows, &["x".to_string()]).ok().flatten().is_none(), "float keys go through SQL");
    }
}
