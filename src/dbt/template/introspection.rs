//! What a template asks of the warehouse while it renders: dbt's `run_query`, `statement` with
//! `load_result`, and the adapter's `get_columns_in_relation` and `get_relation`. Rendering is
//! synchronous and the warehouse is not, so a render answers from the [`Introspection`] it is
//! given and records every query it could not answer; the runner runs those and renders again
//! (`dbt::run::compile_live`). The graph's first compile has nothing to give: it is dbt's
//! parse, and a model that asked is compiled again when it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Environment, ErrorKind, State};

use super::{Relation, Shared, record};
use crate::sql::warehouse::RelationName;

/// What the warehouse answered so far, for one model's compiles.
#[derive(Debug, Clone, Default)]
pub struct Introspection {
    /// Every relation the warehouse holds.
    pub relations: BTreeSet<RelationName>,
    /// A query's text → its result, or why it failed.
    pub answers: BTreeMap<String, Result<QueryAnswer, String>>,
}

/// A query's result as a template reads it (dbt hands templates an agate table).
#[derive(Debug, Clone, Default)]
pub struct QueryAnswer {
    /// Each column's name and its type as DuckDB names it.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// What a render needed of the warehouse and was not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked {
    pub queries: BTreeSet<String>,
    /// Whether it looked at the warehouse otherwise: a relation looked up
    /// (`adapter.get_relation`), or `execute` tested, which is false while the graph is parsed.
    pub warehouse: bool,
}

impl Asked {
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty() && !self.warehouse
    }

    pub fn add(&mut self, other: Asked) {
        self.queries.extend(other.queries);
        self.warehouse |= other.warehouse;
    }
}

/// The query `adapter.get_columns_in_relation` runs: no rows, only the columns.
fn columns_query(relation: &Value) -> String {
    format!("select * from {relation} limit 0")
}

/// `sql`'s answer if it is known; else the render records the question and carries on with an
/// empty answer (`None`), to be rendered again once it is answered.
fn answer(recorder: &Shared, known: Option<&Introspection>, sql: &str) -> Result<Option<QueryAnswer>, minijinja::Error> {
    let sql = sql.trim();
    match known.and_then(|k| k.answers.get(sql)) {
        Some(Ok(answer)) => Ok(Some(answer.clone())),
        Some(Err(message)) => Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("run_query: {message}"))),
        None => {
            record(recorder, |rec| rec.asked.queries.insert(sql.to_string()));
            Ok(None)
        }
    }
}

/// Registers `execute`, `run_query`, `statement` and `load_result`.
pub(super) fn add(env: &mut Environment<'_>, recorder: &Shared, known: Option<Arc<Introspection>>) {
    env.add_global("execute", Value::from_object(Execute(Arc::clone(recorder), known.is_some())));
    let (r, k) = (Arc::clone(recorder), known.clone());
    env.add_function("run_query", move |sql: String| {
        let answer = answer(&r, k.as_deref(), &sql)?.unwrap_or_default();
        Ok(Value::from_object(Table(answer)))
    });
    let (r, k) = (Arc::clone(recorder), known);
    env.add_function("statement", move |state: &mut State, name: Option<String>, kwargs: Kwargs| {
        let caller: Value = kwargs.get("caller")?;
        let fetch: Option<bool> = kwargs.get("fetch_result")?;
        let _: Option<Value> = kwargs.get("auto_begin")?;
        let _: Option<Value> = kwargs.get("language")?;
        kwargs.assert_all_used()?;
        let sql = caller.call(state, &[])?.to_string();
        let answer = answer(&r, k.as_deref(), &sql)?.unwrap_or_default();
        let name = name.unwrap_or_else(|| "main".into());
        let table = fetch.unwrap_or(false).then(|| Value::from_object(Table(answer)));
        record(&r, |rec| rec.statements.insert(name, table));
        Ok(Value::from(""))
    });
    let r = Arc::clone(recorder);
    env.add_function("load_result", move |name: String| {
        let Some(table) = record(&r, |rec| rec.statements.get(&name).cloned()) else { return Ok(Value::from(())) };
        let data = match &table {
            Some(table) => table.get_attr("rows")?,
            None => Value::from(Vec::<Value>::new()),
        };
        Ok::<_, minijinja::Error>(minijinja::context! { data => data, table => table, response => minijinja::context! { code => "OK" } })
    });
}

/// dbt's `execute`: true when the warehouse answers the template, false while the graph is
/// parsed. A template that tests it then is compiled again when it runs, where it is true.
#[derive(Debug)]
struct Execute(Shared, bool);

impl Object for Execute {
    fn is_true(self: &Arc<Self>) -> bool {
        if !self.1 {
            record(&self.0, |rec| rec.asked.warehouse = true);
        }
        self.1
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_true() { "True" } else { "False" })
    }
}

/// `adapter.get_columns_in_relation(relation)`: its columns, as dbt's `Column`s; none for a
/// relation the warehouse does not hold, as dbt-duckdb answers from its catalog.
pub(super) fn columns_in(recorder: &Shared, known: Option<&Introspection>, relation: &Value) -> Result<Value, minijinja::Error> {
    let query = columns_query(relation);
    let missing = known.and_then(|k| k.answers.get(query.trim())).is_some_and(|a| a.is_err());
    let answer = if missing { QueryAnswer::default() } else { answer(recorder, known, &query)?.unwrap_or_default() };
    let columns = answer.columns.into_iter().map(|(name, dtype)| Value::from_object(Column { name, dtype }));
    Ok(Value::from(columns.collect::<Vec<_>>()))
}

/// `adapter.get_relation(database, schema, identifier)`: the relation if the warehouse holds it,
/// else none.
pub(super) fn relation(recorder: &Shared, known: Option<&Introspection>, args: &[Value]) -> Result<Value, minijinja::Error> {
    let (positional, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    let part = |index: usize, key: &str| -> Result<Option<String>, minijinja::Error> {
        let named: Option<String> = kwargs.get(key)?;
        Ok(named.or_else(|| positional.get(index).filter(|v| !v.is_none()).map(Value::to_string)))
    };
    let (_database, schema, identifier) = (part(0, "database")?, part(1, "schema")?, part(2, "identifier")?);
    kwargs.assert_all_used()?;
    let identifier = identifier.ok_or_else(|| minijinja::Error::new(ErrorKind::MissingArgument, "get_relation needs an identifier"))?;
    let name = RelationName::new(schema.as_deref().unwrap_or("main"), &identifier);
    let Some(known) = known else {
        record(recorder, |rec| rec.asked.warehouse = true);
        return Ok(Value::from(()));
    };
    Ok(if known.relations.contains(&name) { Value::from_object(Relation::plain(name)) } else { Value::from(()) })
}

/// dbt's `Column` (dbt-adapters' base class, which dbt-duckdb's columns are): `name`/`column`,
/// `dtype` (the type as DuckDB names it), `data_type` (text types as `character varying(256)`:
/// DuckDB keeps no sizes), `quoted`, and what kind of type it is, by dbt's lists of names.
#[derive(Debug)]
struct Column {
    name: String,
    dtype: String,
}

impl Column {
    fn is(&self, names: &[&str]) -> bool {
        names.contains(&self.dtype.to_lowercase().as_str())
    }

    fn is_string(&self) -> bool {
        self.is(&["text", "character varying", "character", "varchar"])
    }

    fn data_type(&self) -> String {
        if self.is_string() { format!("character varying({STRING_SIZE})") } else { self.dtype.clone() }
    }
}

/// dbt's size of a text column whose type gives none.
const STRING_SIZE: u64 = 256;

impl Object for Column {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" | "column" => Some(Value::from(self.name.clone())),
            "dtype" => Some(Value::from(self.dtype.clone())),
            "data_type" => Some(Value::from(self.data_type())),
            "quoted" => Some(Value::from(quote(&self.name))),
            "char_size" | "numeric_precision" | "numeric_scale" => Some(Value::from(())),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, minijinja::Error> {
        let integer = ["smallint", "integer", "bigint", "smallserial", "serial", "bigserial", "int2", "int4", "int8", "serial2", "serial4", "serial8"];
        let float = ["real", "float4", "float", "double precision", "float8", "double"];
        let numeric = ["numeric", "decimal"];
        let answer = match method {
            "is_string" => self.is_string(),
            "is_integer" => self.is(&integer),
            "is_float" => self.is(&float),
            "is_numeric" => self.is(&numeric),
            "is_number" => self.is(&integer) || self.is(&float) || self.is(&numeric),
            "string_size" if self.is_string() => return Ok(Value::from(STRING_SIZE)),
            "string_size" => return Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("Column.string_size: {} is not a text type", self.dtype))),
            other => return Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("Column.{other} is not available"))),
        };
        Ok(Value::from(answer))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.data_type())
    }
}

fn json(value: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(value.clone()))
}

/// An identifier quoted as DuckDB quotes one (`adapter.quote`).
pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A query's result as dbt's agate table: iterated, it gives its rows; `rows`, `columns` (each
/// with `name` and `values()`) and `column_names`; a row or the columns are indexed by position
/// or by name.
#[derive(Debug)]
struct Table(QueryAnswer);

impl Table {
    fn names(&self) -> Arc<Vec<String>> {
        Arc::new(self.0.columns.iter().map(|(name, _)| name.clone()).collect())
    }

    fn rows(&self) -> Vec<Value> {
        let names = self.names();
        let row = |values: &Vec<serde_json::Value>| Keyed { names: Arc::clone(&names), values: values.iter().map(json).collect() };
        self.0.rows.iter().map(|values| Value::from_object(row(values))).collect()
    }
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.rows())
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "rows" => Some(Value::from(self.rows())),
            "column_names" => Some(Value::from(self.names().to_vec())),
            "column_types" => Some(Value::from(self.0.columns.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>())),
            "columns" => {
                let columns = self.0.columns.iter().enumerate().map(|(index, (name, _))| {
                    let values = self.0.rows.iter().map(|row| row.get(index).map(json).unwrap_or_default());
                    Value::from_object(TableColumn { name: name.clone(), values: values.collect() })
                });
                Some(Value::from_object(Keyed { names: self.names(), values: columns.collect() }))
            }
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, minijinja::Error> {
        match method {
            "print_table" => Ok(Value::from("")),
            other => Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("a query result has no method {other}"))),
        }
    }
}

/// Values in order, each also found by its name: an agate row, or a table's columns.
#[derive(Debug)]
struct Keyed {
    names: Arc<Vec<String>>,
    values: Vec<Value>,
}

impl Object for Keyed {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.values.len())
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = match key.as_str() {
            Some(name) => self.names.iter().position(|n| n == name)?,
            None => {
                let index = i64::try_from(key.clone()).ok()?;
                if index < 0 { self.values.len().checked_sub(index.unsigned_abs() as usize)? } else { index as usize }
            }
        };
        self.values.get(index).cloned()
    }
}

/// One column of a query result: its `name` and its `values()`.
#[derive(Debug)]
struct TableColumn {
    name: String,
    values: Vec<Value>,
}

impl Object for TableColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "name").then(|| Value::from(self.name.clone()))
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, _args: &[Value]) -> Result<Value, minijinja::Error> {
        match method {
            "values" => Ok(Value::from(self.values.clone())),
            other => Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("a result column has no method {other}"))),
        }
    }
}
