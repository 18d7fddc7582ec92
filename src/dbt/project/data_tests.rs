//! dbt's data tests as a project declares them: generic tests under `data_tests:` (or `tests:`)
//! of a model, seed, snapshot or source table and of their columns, and singular tests (a SQL
//! file in a test path selecting the failing rows).

use serde_json::{Map, Value};

use super::ConfigValues;
use crate::error::{Error, Result};

/// A dbt data test.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTest {
    /// dbt's name, e.g. `not_null_orders_id`, or the one a `name:` gives.
    pub name: String,
    /// The file that declares it.
    pub path: String,
    pub kind: TestKind,
    /// `config:` and dbt's config arguments beside the test (`severity`, `where`, …).
    pub config: ConfigValues,
    /// The package it comes from (`None`: the project's own).
    pub package: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TestKind {
    Generic(GenericTest),
    /// A query whose rows are the failures.
    Singular { sql: String },
}

/// A test macro (`test_<name>`) applied to a node and maybe one of its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericTest {
    /// `not_null`, `relationships`, a project's own, or `package.name`.
    pub test: String,
    pub on: Tested,
    pub column: Option<String>,
    /// The macro's other arguments, as written.
    pub args: Map<String, Value>,
}

/// What a generic test reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tested {
    /// A model, seed or snapshot.
    Node(String),
    Source { source: String, table: String },
}

/// The keys beside a test that dbt takes as its config rather than as arguments.
const CONFIG_ARGS: [&str; 14] = [
    "severity", "tags", "enabled", "where", "limit", "warn_if", "error_if", "fail_calc", "store_failures",
    "store_failures_as", "meta", "database", "schema", "alias",
];

/// The node lists of a properties file whose entries carry tests.
const TESTED_LISTS: [&str; 3] = ["models", "seeds", "snapshots"];

/// The generic tests a properties file declares.
pub fn declared(path: &str, doc: &Value) -> Result<Vec<DataTest>> {
    let mut tests = Vec::new();
    let list = |key: &str| doc.get(key).and_then(Value::as_array).into_iter().flatten();
    for node in TESTED_LISTS.iter().flat_map(|key| list(key)) {
        let Some(name) = node.get("name").and_then(Value::as_str) else { continue };
        tests.extend(of_node(path, node, &Tested::Node(name.to_string()))?);
    }
    for source in list("sources") {
        let Some(source_name) = source.get("name").and_then(Value::as_str) else { continue };
        for table in source.get("tables").and_then(Value::as_array).into_iter().flatten() {
            let Some(table_name) = table.get("name").and_then(Value::as_str) else { continue };
            let on = Tested::Source { source: source_name.to_string(), table: table_name.to_string() };
            tests.extend(of_node(path, table, &on)?);
        }
    }
    Ok(tests)
}

/// A singular test: `tests/x.sql` is the test `x`.
pub fn singular(path: &str, sql: &str) -> DataTest {
    let stem = path.trim_end_matches(".sql");
    DataTest {
        name: stem.rsplit('/').next().unwrap_or(stem).to_string(),
        path: path.to_string(),
        kind: TestKind::Singular { sql: sql.to_string() },
        config: ConfigValues::new(),
        package: None,
    }
}

/// A node's own tests, then its columns'.
fn of_node(path: &str, node: &Value, on: &Tested) -> Result<Vec<DataTest>> {
    let tests_of = |entry: &Value| entry.get("data_tests").or_else(|| entry.get("tests")).and_then(Value::as_array).cloned();
    let mut out = Vec::new();
    for test in tests_of(node).into_iter().flatten() {
        out.push(generic(path, on, None, &test)?);
    }
    for column in node.get("columns").and_then(Value::as_array).into_iter().flatten() {
        let Some(column_name) = column.get("name").and_then(Value::as_str) else { continue };
        for test in tests_of(column).into_iter().flatten() {
            out.push(generic(path, on, Some(column_name), &test)?);
        }
    }
    Ok(out)
}

/// One entry of a `data_tests:` list, as dbt's `TestBuilder` reads it: a name, `{name: {args}}`
/// or `{test_name: name, args}`; arguments beside the test or under `arguments:`.
fn generic(path: &str, on: &Tested, column: Option<&str>, entry: &Value) -> Result<DataTest> {
    let (test, written) = match entry {
        Value::String(name) => (name.clone(), Map::new()),
        Value::Object(map) if map.contains_key("test_name") => {
            let mut args = map.clone();
            let name = args.remove("test_name").and_then(|n| n.as_str().map(str::to_string));
            (name.unwrap_or_default(), args)
        }
        Value::Object(map) if map.len() == 1 => {
            let (name, args) = map.iter().next().map(|(n, a)| (n.clone(), a.clone())).unwrap_or_default();
            match args {
                Value::Object(args) => (name, args),
                Value::Null => (name, Map::new()),
                _ => return Err(Error::project(path, format!("test `{name}` of {}: its arguments must be a mapping", on.describe()))),
            }
        }
        other => return Err(Error::project(path, format!("a test of {} must be a name or a mapping, not {other}", on.describe()))),
    };
    if test.is_empty() {
        return Err(Error::project(path, format!("a test of {} has no name", on.describe())));
    }
    let mut args = Map::new();
    let mut config = ConfigValues::new();
    let mut name = None;
    for (key, value) in written {
        match key.as_str() {
            "arguments" => args.extend(value.as_object().cloned().unwrap_or_default()),
            "config" => config.extend(value.as_object().cloned().unwrap_or_default()),
            "name" => name = value.as_str().map(str::to_string),
            "description" => {}
            key if CONFIG_ARGS.contains(&key) => {
                config.insert(key.to_string(), value);
            }
            _ => {
                args.insert(key, value);
            }
        }
    }
    if let Some(column) = column {
        args.insert("column_name".into(), Value::String(column.to_string()));
    }
    let column = args.remove("column_name").and_then(|c| c.as_str().map(str::to_string));
    let generic = GenericTest { test, on: on.clone(), column, args };
    Ok(DataTest { name: name.unwrap_or_else(|| generic.dbt_name()), path: path.to_string(), kind: TestKind::Generic(generic), config, package: None })
}

impl Tested {
    fn describe(&self) -> String {
        match self {
            Tested::Node(name) => format!("`{name}`"),
            Tested::Source { source, table } => format!("source `{source}.{table}`"),
        }
    }
}

impl GenericTest {
    /// dbt's synthesized name (`synthesize_generic_test_names`'s full name, which dbt's node
    /// name, selectors and logs use): the test (`source_` first for a source's,
    /// `package_` for a package's), the node, then every argument's values in argument order.
    pub fn dbt_name(&self) -> String {
        let (namespace, test) = match self.test.split_once('.') {
            Some((package, test)) => (format!("{package}_"), test),
            None => (String::new(), self.test.as_str()),
        };
        let (prefix, target) = match &self.on {
            Tested::Node(name) => ("", name.clone()),
            Tested::Source { source, table } => ("source_", format!("{source}_{table}")),
        };
        let mut args: Vec<(&str, &Value)> = self.args.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let column = self.column.clone().map(Value::String);
        if let Some(column) = &column {
            args.push(("column_name", column));
        }
        args.sort_by_key(|(key, _)| *key);
        let parts: Vec<String> = args
            .iter()
            .flat_map(|(_, value)| match value {
                Value::Array(items) => items.iter().map(python_str).collect(),
                Value::Object(map) => map.values().map(python_str).collect(),
                other => vec![python_str(other)],
            })
            .map(|part| clean(&part))
            .collect();
        format!("{namespace}{prefix}{test}_{target}_{}", parts.join("__"))
    }
}

/// `str()` of a YAML value as Python prints it.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Array(items) => format!("[{}]", items.iter().map(python_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let entries: Vec<String> = map.iter().map(|(k, v)| format!("'{k}': {}", python_repr(v))).collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Number(number) => number.to_string(),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{text}'"),
        other => python_str(other),
    }
}

/// dbt's `re.sub("[^0-9a-zA-Z_]+", "_", arg)`.
fn clean(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut in_run = false;
    for c in part.chars() {
        let kept = c.is_ascii_alphanumeric() || c == '_';
        if kept || !in_run {
            out.push(if kept { c } else { '_' });
        }
        in_run = !kept;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tests_of(yaml: &str) -> Vec<DataTest> {
        let doc = crate::dbt::project::yaml::parse("models/schema.yml", yaml).unwrap_or_else(|e| panic!("{e}"));
        declared("models/schema.yml", &doc).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_are_dbts() {
        let tests = tests_of(
            "models:\n  - name: orders\n    data_tests:\n      - dbt_utils.expression_is_true:\n          arguments:\n            expression: \"amount >= 0\"\n    columns:\n      - name: customer_id\n        data_tests:\n          - not_null\n          - relationships:\n              to: ref('customers')\n              field: id\n              config:\n                severity: warn\n          - accepted_values:\n              values: ['a', 'b-c']\n              where: \"x > 1\"\n              name: my_values\nsources:\n  - name: raw\n    tables:\n      - name: orders\n        columns:\n          - name: id\n            tests: [unique]\n",
        );
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dbt_utils_expression_is_true_orders_amount_0",
                "not_null_orders_customer_id",
                "relationships_orders_customer_id__id__ref_customers_",
                "my_values",
                "source_unique_raw_orders_id",
            ]
        );
        assert_eq!(tests[2].config.get("severity"), Some(&Value::String("warn".into())));
        assert_eq!(tests[3].config.get("where"), Some(&Value::String("x > 1".into())));
        let TestKind::Generic(values) = &tests[3].kind else { panic!("{:?}", tests[3]) };
        assert_eq!(values.args.get("values"), Some(&serde_json::json!(["a", "b-c"])));
        assert_eq!(values.column.as_deref(), Some("customer_id"));
    }

    #[test]
    fn a_malformed_test_says_where() {
        let doc = crate::dbt::project::yaml::parse("m.yml", "models:\n  - name: m\n    data_tests:\n      - not_null: [1]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let error = declared("m.yml", &doc).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("m.yml: test `not_null` of `m`: its arguments must be a mapping"));
    }
}
