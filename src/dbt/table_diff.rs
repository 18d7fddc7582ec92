//! What a run did to a table, row by row: the rows it added, changed (old and new values) and
//! removed, and the rows it wrote again unchanged. Each model run keeps its diff, so a page
//! can show it and time travel can undo runs one by one to show a table as it was.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::sql::query::json_cell;
use crate::sql::warehouse::Table;

/// One row's values, in the diff's column order.
pub type Row = Vec<serde_json::Value>;

/// Tables larger than this keep only their row counts: a diff is for reading, and
/// marts are a row per day or per category, not per event.
pub const DIFF_ROW_LIMIT: usize = 5_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableDiff {
    /// The table's columns after the run.
    pub columns: Vec<String>,
    /// Positions in `columns` identifying a row: the model's unique key, else its first column.
    pub key: Vec<usize>,
    pub added: Vec<Row>,
    pub changed: Vec<ChangedRow>,
    pub removed: Vec<Row>,
    /// Rows the run wrote again with the values they already had (a partition filtered with
    /// `between` rewrites the day after it this way).
    pub rewritten: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedRow {
    pub old: Row,
    pub new: Row,
}

/// A table's rows by key, in key order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyedRows {
    pub columns: Vec<String>,
    pub key: Vec<usize>,
    pub rows: BTreeMap<String, Row>,
}

impl TableDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Positions of the columns whose value differs in a changed row.
    pub fn changed_columns(row: &ChangedRow) -> Vec<usize> {
        (0..row.new.len()).filter(|&i| !same_value(row.old.get(i), row.new.get(i))).collect()
    }

    /// The diff of this run followed by `next` (same table and key): each row from its first
    /// old value to its last new value.
    pub fn then(&self, next: &TableDiff) -> TableDiff {
        // key → (value before both, value after both, written by either)
        let mut rows: BTreeMap<String, (Option<Row>, Option<Row>, bool)> = BTreeMap::new();
        for diff in [self, next] {
            let mut touch = |row: &Row, old: Option<&Row>, new: Option<&Row>, written: bool| {
                let entry = rows.entry(key_text(row, &diff.key)).or_insert_with(|| (old.cloned(), None, false));
                entry.1 = new.cloned();
                entry.2 |= written;
            };
            diff.added.iter().for_each(|r| touch(r, None, Some(r), true));
            diff.removed.iter().for_each(|r| touch(r, Some(r), None, false));
            diff.rewritten.iter().for_each(|r| touch(r, Some(r), Some(r), true));
            diff.changed.iter().for_each(|c| touch(&c.new, Some(&c.old), Some(&c.new), true));
        }
        let mut out = TableDiff { columns: next.columns.clone(), key: next.key.clone(), ..TableDiff::default() };
        for (old, new, written) in rows.into_values() {
            match (old, new) {
                (None, Some(new)) => out.added.push(new),
                (Some(old), None) => out.removed.push(old),
                (Some(old), Some(new)) if !same_row(&old, &new) => out.changed.push(ChangedRow { old, new }),
                (Some(_), Some(new)) if written => out.rewritten.push(new),
                _ => {}
            }
        }
        out
    }

    /// Puts `rows` back as they were before the run.
    pub fn undo(&self, rows: &mut KeyedRows) {
        for row in &self.added {
            rows.rows.remove(&key_text(row, &self.key));
        }
        // A changed row keeps its key, so putting the old values back replaces the new ones.
        for row in self.removed.iter().chain(self.changed.iter().map(|c| &c.old)) {
            rows.rows.insert(key_text(row, &self.key), row.clone());
        }
    }
}

impl KeyedRows {
    /// `None` when the table is too large to keep or the key does not identify its rows.
    pub fn of(table: &Table, key_columns: &[String]) -> Option<KeyedRows> {
        let columns: Vec<String> = table.schema.fields().iter().map(|f| f.name().clone()).collect();
        let key: Vec<usize> = key_columns.iter().map(|k| columns.iter().position(|c| c == k)).collect::<Option<_>>()?;
        let key = if key.is_empty() { vec![0] } else { key };
        Self::with_columns(table, columns, key)
    }

    /// The same rows with the same values, numbers to 12 significant digits (rows rewritten
    /// unchanged keep their newest bits).
    pub fn same_as(&self, other: &KeyedRows) -> bool {
        self.columns == other.columns
            && self.rows.len() == other.rows.len()
            && self.rows.iter().zip(&other.rows).all(|((k, a), (l, b))| k == l && same_row(a, b))
    }

    /// The rows of `table` laid out in `columns` (missing columns are null).
    fn with_columns(table: &Table, columns: Vec<String>, key: Vec<usize>) -> Option<KeyedRows> {
        if table.num_rows() > DIFF_ROW_LIMIT || columns.is_empty() {
            return None;
        }
        let mut rows = BTreeMap::new();
        for batch in table.batches.iter() {
            let positions: Vec<Option<usize>> = columns.iter().map(|c| batch.schema().index_of(c).ok()).collect();
            for r in 0..batch.num_rows() {
                let row: Row = positions
                    .iter()
                    .map(|p| p.map_or(serde_json::Value::Null, |c| json_cell(batch, c, r)))
                    .collect();
                if rows.insert(key_text(&row, &key), row).is_some() {
                    return None;
                }
            }
        }
        Some(KeyedRows { columns, key, rows })
    }
}

/// The diff of a run that turned `old` into `new`, having written the rows of `written`.
/// `None` when a table is too large or `key_columns` do not identify its rows.
pub fn diff(old: Option<&Table>, written: Option<&Table>, new: &Table, key_columns: &[String]) -> Option<TableDiff> {
    let after = KeyedRows::of(new, key_columns)?;
    let before = match old {
        Some(old) => KeyedRows::with_columns(old, after.columns.clone(), after.key.clone())?.rows,
        None => BTreeMap::new(),
    };
    let written: BTreeSet<String> = match written {
        Some(written) => KeyedRows::with_columns(written, after.columns.clone(), after.key.clone())?.rows.into_keys().collect(),
        None => BTreeSet::new(),
    };
    let mut out = TableDiff { columns: after.columns.clone(), key: after.key.clone(), ..TableDiff::default() };
    for (key, row) in &after.rows {
        match before.get(key) {
            None => out.added.push(row.clone()),
            Some(old) if !same_row(old, row) => out.changed.push(ChangedRow { old: old.clone(), new: row.clone() }),
            Some(_) if written.contains(key) => out.rewritten.push(row.clone()),
            Some(_) => {}
        }
    }
    out.removed = before.iter().filter(|(k, _)| !after.rows.contains_key(*k)).map(|(_, r)| r.clone()).collect();
    Some(out)
}

fn same_row(a: &Row, b: &Row) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(Some(x), Some(y)))
}

/// Equal, or numbers equal to 12 significant digits: the same day summed in another order
/// differs in its last bits, which is not a change a reader should see.
fn same_value(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> bool {
    match (a.and_then(serde_json::Value::as_f64), b.and_then(serde_json::Value::as_f64)) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

fn key_text(row: &Row, key: &[usize]) -> String {
    let values: Vec<&serde_json::Value> = key.iter().filter_map(|&i| row.get(i)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn table(rows: &[(&str, i64)]) -> Table {
        let schema = Arc::new(Schema::new(vec![Field::new("day", DataType::Utf8, false), Field::new("n", DataType::Int64, false)]));
        let days = StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
        let counts = Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(days), Arc::new(counts)]).expect("valid batch");
        Table::new(schema, vec![batch])
    }

    #[test]
    fn classifies_rows_and_undo_restores_the_old_table() {
        let old = table(&[("03-14", 5), ("03-15", 7), ("03-16", 9), ("03-17", 1)]);
        let written = table(&[("03-15", 8), ("03-16", 9), ("03-18", 2)]);
        let new = table(&[("03-14", 5), ("03-15", 8), ("03-16", 9), ("03-18", 2)]);
        let d = diff(Some(&old), Some(&written), &new, &["day".into()]).expect("small keyed tables");
        assert_eq!(d.added, vec![vec![serde_json::json!("03-18"), serde_json::json!(2)]]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].old[1], serde_json::json!(7));
        assert_eq!(TableDiff::changed_columns(&d.changed[0]), vec![1]);
        assert_eq!(d.removed, vec![vec![serde_json::json!("03-17"), serde_json::json!(1)]]);
        assert_eq!(d.rewritten, vec![vec![serde_json::json!("03-16"), serde_json::json!(9)]]);

        let mut rows = KeyedRows::of(&new, &["day".into()]).expect("keyed");
        d.undo(&mut rows);
        assert_eq!(Some(rows), KeyedRows::of(&old, &["day".into()]));
    }

    #[test]
    fn consecutive_diffs_compose() {
        let a = table(&[("03-15", 7), ("03-16", 9)]);
        let b = table(&[("03-15", 8), ("03-16", 9)]);
        let c = table(&[("03-15", 8), ("03-16", 9), ("03-17", 3)]);
        let key = ["day".to_string()];
        let first = diff(Some(&a), Some(&b), &b, &key).expect("diff");
        let second = diff(Some(&b), Some(&table(&[("03-16", 9), ("03-17", 3)])), &c, &key).expect("diff");
        let both = first.then(&second);
        assert_eq!(both.changed.len(), 1, "03-15: 7 → 8");
        assert_eq!(both.added.len(), 1, "03-17");
        assert_eq!(both.rewritten, vec![vec![serde_json::json!("03-16"), serde_json::json!(9)]]);
    }

    #[test]
    fn duplicate_keys_give_no_diff() {
        let new = table(&[("03-15", 1), ("03-15", 2)]);
        assert_eq!(diff(None, None, &new, &["day".into()]), None);
    }
}
