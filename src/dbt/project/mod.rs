//! A dbt-style project: models (SQL + Jinja), sources, data tests, macros and seeds, read from
//! a set of files: a folder natively, a zip or a drop in the browser, or files built in above.

mod config;
mod data_tests;
mod files;
mod packages;
mod properties;
pub mod yaml;

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use config::{
    BatchSize, ConfigValues, HardDeletes, Materialization, MergeColumns, ModelConfig, OnSchemaChange, Severity, SnapshotConfig,
    SnapshotStrategy, Strategy, TestConfig,
};
pub use data_tests::{DataTest, TestKind, Tested};
pub use files::ProjectFiles;
pub use packages::{Package, builtin_dbt_utils};
pub use properties::target;
pub(crate) use files::{macro_names, read_text};

use crate::error::{Error, Result};
use crate::sql::dialect::SqlDialect;
use crate::sql::warehouse::{Aliases, RelationName};

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub dialect: SqlDialect,
    pub models: BTreeMap<String, Model>,
    pub sources: Vec<Source>,
    pub macros: Vec<MacroFile>,
    /// Its packages (`dbt_utils` at least): their macros and generic tests; their models,
    /// seeds, sources and data tests are the project's too, each model and seed saying whose.
    pub packages: Vec<Package>,
    /// `dispatch:` from dbt_project.yml: a macro namespace → the packages searched for its
    /// macros, in order.
    pub dispatch: BTreeMap<String, Vec<String>>,
    /// What dbt would warn of as it reads the project (YAML describing a model with no SQL).
    pub warnings: Vec<String>,
    pub seeds: Vec<Seed>,
    pub tests: Vec<DataTest>,
    /// `vars:` from dbt_project.yml; `--vars` override them.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// The files the project was read from, kept so it can be exported as it was written.
    pub files: ProjectFiles,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    /// Path inside the project, e.g. `models/marts/daily_metrics.sql`.
    pub path: String,
    pub sql: String,
    pub description: Option<String>,
    /// Config from dbt_project.yml and schema files; the model's own `config()` goes on top.
    pub config: ConfigValues,
    /// The package it comes from (`None`: the project's own).
    pub package: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// The .yml file that declares it.
    pub path: String,
    pub schema: String,
    pub tables: Vec<SourceTable>,
}

#[derive(Debug, Clone)]
pub struct SourceTable {
    pub name: String,
    pub identifier: String,
    /// `config: event_time:`: the column microbatch models filter this table on.
    pub event_time: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MacroFile {
    pub path: String,
    pub source: String,
    /// Names of the `{% macro %}`s it defines, callable from every model.
    pub names: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub path: String,
    pub csv: String,
    /// dbt's `column_types` config: column → the SQL type it is cast to, instead of inferred.
    pub column_types: BTreeMap<String, String>,
    /// The package it comes from (`None`: the project's own).
    pub package: Option<String>,
}

impl Project {
    /// The relation a source table resolves to, and its event time column.
    pub fn source_table(&self, source: &str, table: &str) -> Option<(RelationName, Option<String>)> {
        let source = self.sources.iter().find(|s| s.name == source)?;
        let table = source.tables.iter().find(|t| t.name == table)?;
        Some((RelationName::new(&source.schema, &table.identifier), table.event_time.clone()))
    }

    /// Every source table also answers to `source_name.table_name`, as queries write it.
    pub fn aliases(&self) -> Aliases {
        let mut aliases = Aliases::new();
        for source in &self.sources {
            for table in &source.tables {
                let alias = RelationName::new(&source.name, &table.name);
                let target = RelationName::new(&source.schema, &table.identifier);
                if alias != target {
                    aliases.insert(alias, target);
                }
            }
        }
        aliases
    }

    /// The project as a dbt invocation with `--vars` reads it: when a YAML property reads a
    /// var, the files are read again with `vars` over the project's own.
    pub fn with_vars(&self, vars: &serde_json::Map<String, serde_json::Value>) -> Result<Cow<'_, Project>> {
        if vars.is_empty() || !self.files.properties_read_vars() {
            return Ok(Cow::Borrowed(self));
        }
        self.files.parse_with_vars(vars).map(Cow::Owned)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    /// A model or seed is written to `main.<name>`: one named like a `raw` table (loaded from
    /// outside the project) would replace the data the project reads (and be saved over it).
    /// A source may name a table the project builds itself (dbt's own tests read a seed as a
    /// source), so that is no clash.
    pub fn check_reserved_names(&self, raw: &[RelationName]) -> Result<()> {
        let reserved: BTreeMap<RelationName, String> = raw.iter().map(|r| (r.clone(), format!("the raw table {r}"))).collect();
        let written = self.models.values().map(|m| ("model", &m.name, &m.path)).chain(self.seeds.iter().map(|s| ("seed", &s.name, &s.path)));
        for (kind, name, path) in written {
            if let Some(read) = reserved.get(&RelationName::main(name)) {
                return Err(Error::project(
                    path.as_str(),
                    format!("{kind} `{name}` would replace {read}, which the project reads; give it another name"),
                ));
            }
        }
        Ok(())
    }
}
