//! Jinja in YAML property values, rendered as dbt renders them when it reads a project: a
//! source's `schema` and `identifier`, and config values (`+schema: "{{ target.schema }}"`,
//! `identifier: "{{ var('seed_name', 'base') }}"`). They see `target`, the project's `vars`
//! (with an invocation's `--vars` over them: `Project::with_vars`) and `env_var` with its
//! default (a project is read before any environment is known: in the browser there is none).
//! Values without `{{` or `{%` are left as they are. Descriptions are rendered too, and can
//! also read `doc()`.

use std::collections::BTreeMap;

use minijinja::{Environment, ErrorKind, Value};

use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::sql::dialect::{DEFAULT_CATALOG, DEFAULT_SCHEMA};

/// dbt's `target` for the one profile Backfill has: dbt-duckdb's defaults.
pub fn target(profile_name: &str) -> Value {
    minijinja::context! {
        name => "dev",
        schema => DEFAULT_SCHEMA,
        type => "duckdb",
        database => DEFAULT_CATALOG,
        threads => 1,
        profile_name => profile_name,
    }
}

pub struct Properties<'a> {
    env: Environment<'a>,
}

impl Properties<'_> {
    pub fn new(project_name: &str, vars: &serde_json::Map<String, serde_json::Value>) -> Self {
        let mut env = Environment::new();
        env.set_fuel(Some(Limit::TemplateFuel.max()));
        env.add_global("target", target(project_name));
        let vars = vars.clone();
        env.add_function("var", move |name: String, default: Option<Value>| match (vars.get(&name), default) {
            (Some(value), _) => Ok(Value::from(minijinja::value::Serde(value))),
            (None, Some(default)) => Ok(default),
            (None, None) => Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("required var '{name}' not found"))),
        });
        env.add_function("env_var", |name: String, default: Option<String>| {
            default.ok_or_else(|| {
                minijinja::Error::new(ErrorKind::InvalidOperation, format!("env_var('{name}') needs a default in a YAML property"))
            })
        });
        Properties { env }
    }

    /// dbt's `doc(name)` (or `doc(project, name)`): the text of the project's `{% docs name %}`
    /// block, as written.
    pub fn add_docs(&mut self, project_name: &str, docs: BTreeMap<String, String>) {
        let project_name = project_name.to_string();
        self.env.add_function("doc", move |first: String, second: Option<String>| {
            let (project, name) = match second {
                Some(name) => (first, name),
                None => (project_name.clone(), first),
            };
            match docs.get(&name) {
                Some(text) if project == project_name => Ok(text.clone()),
                _ => Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("no docs block `{name}` in project `{project}` (a `{{% docs {name} %}}` block in a .md file)"),
                )),
            }
        });
    }

    /// `text` rendered, when it holds Jinja; `path` is the file it was read from.
    pub fn text(&self, path: &str, text: &str) -> Result<String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        self.env
            .render_str(text, minijinja::context! {})
            .map_err(|e| Error::project(path, format!("`{text}`: {}", e.detail().unwrap_or(&e.to_string()))))
    }

    /// `value` with every string in it rendered (a config may hold lists and maps).
    pub fn value(&self, path: &str, value: &serde_json::Value) -> Result<serde_json::Value> {
        use serde_json::Value as Json;
        Ok(match value {
            Json::String(text) => Json::String(self.text(path, text)?),
            Json::Array(items) => Json::Array(items.iter().map(|v| self.value(path, v)).collect::<Result<_>>()?),
            Json::Object(map) => {
                Json::Object(map.iter().map(|(k, v)| Ok((k.clone(), self.value(path, v)?))).collect::<Result<_>>()?)
            }
            other => other.clone(),
        })
    }
}
