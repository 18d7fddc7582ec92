//! Reading a dbt project from its files: `dbt_project.yml`, `models/**/*.sql`,
//! `models/**/*.yml`, `macros/**/*.sql`, `seeds/**/*.csv`, `snapshots/**/*.sql`, and the
//! `{% docs %}` blocks of `.md` files that descriptions read with `doc()`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::{ConfigValues, KNOWN_KEYS};
use super::properties::Properties;
use super::{packages, yaml};
use super::data_tests::{self, DataTest, TestKind, Tested};
use super::{MacroFile, Model, Project, Seed, Source, SourceTable};
use crate::error::{Error, Result};
use crate::limits::Limit;
use crate::sql::dialect::{DEFAULT_SCHEMA, SqlDialect};

/// A project's files by path relative to its root (`/`-separated), with their text.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProjectFiles(pub BTreeMap<String, String>);

impl ProjectFiles {
    pub fn insert(&mut self, path: &str, text: &str) {
        self.0.insert(path.trim_start_matches("./").to_string(), text.to_string());
    }

    /// Whether a file at `relative` (to the project root, `/`-separated) is one a project reads:
    /// SQL, YAML or CSV below the root, outside skipped folders; Markdown (docs blocks) in a
    /// folder of the project or a package, not beside its dbt_project.yml (a README). Every way
    /// files arrive (a zip, a folder, a share link, the CLI's project folder) goes through this
    /// filter, so a path that would leave the project where it is exported (`..`, absolute, a
    /// drive, a backslash) never gets in.
    pub fn wants(relative: &str) -> bool {
        let safe = |part: &str| {
            !part.is_empty() && !part.starts_with('.') && !part.contains(['\\', ':']) && !part.contains(char::is_control)
        };
        let (folders, name) = relative.rsplit_once('/').unwrap_or(("", relative));
        let extension = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        let mut folder = String::new();
        let folders_wanted = folders.is_empty()
            || folders.split('/').all(|f| {
                folder = if folder.is_empty() { f.to_string() } else { format!("{folder}/{f}") };
                safe(f) && !Self::skips_folder(&folder)
            });
        let a_root = folders.is_empty() || folders.rsplit_once('/').is_some_and(|(parent, _)| parent == packages::INSTALLED);
        safe(name) && folders_wanted && (["sql", "yml", "yaml", "csv"].contains(&extension) || (extension == "md" && !a_root))
    }

    /// Folders never part of a project's sources, so never walked, by their `/`-separated path
    /// (from the project root or above it): hidden ones, those dbt writes itself, other tools'
    /// packages and environments (a `venv` holds dbt's own macros, thousands of .sql files),
    /// and inside `dbt_packages/` the packages' own installed packages and test projects. The
    /// project's `dbt_packages/` is read: what `dbt deps` installed there is its packages.
    pub fn skips_folder(path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let name = parts.last().copied().unwrap_or_default();
        let installed_at = parts[..parts.len() - 1].iter().position(|p| *p == packages::INSTALLED);
        name.starts_with('.')
            || matches!(name, "target" | "logs" | "node_modules" | "venv" | "site-packages" | "__pycache__")
            || (name == packages::INSTALLED && installed_at.is_some())
            || (name == "integration_tests" && installed_at.is_some_and(|at| at + 3 == parts.len()))
    }

    /// Whether a YAML file reads a var: only then do `--vars` change what the project is.
    pub fn properties_read_vars(&self) -> bool {
        self.0.iter().any(|(path, text)| (path.ends_with(".yml") || path.ends_with(".yaml")) && text.contains("var("))
    }

    /// Fails when `files` files of `bytes` bytes together are over Backfill's limits for one
    /// project; `place` names where they come from.
    pub fn check_size(place: &str, files: usize, bytes: u64) -> Result<()> {
        Limit::ProjectFiles.check(files as u64, place)?;
        Limit::ProjectBytes.check(bytes, place)
    }

    /// Every file is one a project reads and together they are within the limits: files that
    /// arrive any other way than an import (a share link's, a restored session's) meet the same
    /// filter before they become a project.
    fn check(&self) -> Result<()> {
        if let Some(path) = self.0.keys().find(|path| !Self::wants(path)) {
            return Err(Error::project(
                path.as_str(),
                "not a file a dbt project reads (only .sql, .yml, .yaml and .csv files inside the project, \
                 and .md files in its folders, outside hidden and build folders)",
            ));
        }
        let bytes = self.0.iter().map(|(path, text)| (path.len() + text.len()) as u64).sum();
        Self::check_size("the project's files", self.0.len(), bytes)
    }

    /// Reads every project file below `root` (natively only; the browser hands over files).
    /// Symlinked folders are not followed (a link to a parent would be walked forever); a
    /// symlinked file is read when it leads to a regular file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_dir(root: &std::path::Path) -> Result<ProjectFiles> {
        use std::path::{Path, PathBuf};
        fn walk(dir: &Path, relative: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
            let fail = |e: std::io::Error| Error::project(dir.display().to_string(), e.to_string());
            for entry in std::fs::read_dir(dir).map_err(fail)? {
                let entry = entry.map_err(fail)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = if relative.is_empty() { name.clone() } else { format!("{relative}/{name}") };
                if entry.file_type().map_err(fail)?.is_dir() {
                    if !ProjectFiles::skips_folder(&path) {
                        walk(&entry.path(), &path, out)?;
                    }
                } else if ProjectFiles::wants(&path) {
                    out.push((path, entry.path()));
                }
            }
            Ok(())
        }
        let mut found = Vec::new();
        walk(root, "", &mut found)?;
        let place = root.display().to_string();
        Limit::ProjectFiles.check(found.len() as u64, &place)?;
        let mut files = ProjectFiles::default();
        let mut left = Limit::ProjectBytes.max();
        for (relative, path) in found {
            let place = path.display().to_string();
            let fail = |e: std::io::Error| Error::project(&place, e.to_string());
            if std::fs::metadata(&path).map_err(fail)?.is_file() {
                let text = read_text(std::fs::File::open(&path).map_err(fail)?, &mut left, &place)?;
                files.insert(&relative, &text);
            }
        }
        if !files.0.contains_key("dbt_project.yml") {
            return Err(Error::project(place, "not a dbt project: there is no dbt_project.yml"));
        }
        Ok(files)
    }

    pub fn parse(&self) -> Result<Project> {
        self.parse_with_vars(&serde_json::Map::new())
    }

    /// The project as a dbt invocation with `--vars` reads it: its YAML properties' Jinja sees
    /// `cli_vars` over the project's `vars:`.
    pub fn parse_with_vars(&self, cli_vars: &serde_json::Map<String, Value>) -> Result<Project> {
        let mut project = self.read_project(cli_vars)?;
        project.packages = packages::resolve(self, cli_vars)?;
        adopt_packages(&mut project)?;
        Ok(project)
    }

    /// A package's files read as a project (the root project resolves every package).
    pub(super) fn parse_package(&self, cli_vars: &serde_json::Map<String, Value>) -> Result<Project> {
        self.read_project(cli_vars)
    }

    fn read_project(&self, cli_vars: &serde_json::Map<String, Value>) -> Result<Project> {
        self.check()?;
        let project_file = "dbt_project.yml";
        let text = self
            .0
            .get(project_file)
            .ok_or_else(|| Error::project(project_file, "missing: a project needs a dbt_project.yml"))?;
        let root = yaml::parse(project_file, text)?;
        let name = root
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::project(project_file, "missing `name:`"))?
            .to_string();
        let paths = |key: &str, default: &str| -> Vec<String> {
            match root.get(key).and_then(Value::as_array) {
                Some(list) => list.iter().filter_map(Value::as_str).map(|p| p.trim_end_matches('/').to_string()).collect(),
                None => vec![default.to_string()],
            }
        };
        let model_paths = paths("model-paths", "models");
        let macro_paths = paths("macro-paths", "macros");
        let seed_paths = paths("seed-paths", "seeds");
        let test_paths = paths("test-paths", "tests");
        let snapshot_paths = paths("snapshot-paths", "snapshots");
        // dbt looks for docs blocks in every resource folder unless `docs-paths` says where.
        let docs_paths = match root.get("docs-paths") {
            Some(_) => paths("docs-paths", ""),
            None => [&model_paths, &seed_paths, &macro_paths, &snapshot_paths, &paths("analysis-paths", "analyses")]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        };
        let vars = root
            .get("vars")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let dialect = match root.get("sql_dialect").and_then(Value::as_str) {
            None | Some("duckdb") => SqlDialect::Duckdb,
            Some("datafusion") => SqlDialect::Datafusion,
            Some(other) => {
                return Err(Error::project(
                    project_file,
                    format!("sql_dialect `{other}` is not one of duckdb, datafusion"),
                ));
            }
        };
        let folder_configs = project_tree(root.get("models"), &name);
        let snapshot_configs = project_tree(root.get("snapshots"), &name);
        let seed_configs = project_tree(root.get("seeds"), &name);
        let mut property_vars = vars.clone();
        property_vars.extend(cli_vars.clone());
        let mut properties = Properties::new(&name, &property_vars);

        let under = |path: &str, roots: &[String]| -> Option<String> {
            roots.iter().find_map(|r| {
                path.strip_prefix(r.as_str())
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(str::to_string)
            })
        };
        let mut docs: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (path, text) in self.0.iter().filter(|(path, _)| path.ends_with(".md") && under(path, &docs_paths).is_some()) {
            for (doc_name, body) in named_blocks(path, text, "docs")? {
                if let Some((previous, _)) = docs.get(&doc_name) {
                    return Err(Error::project(path.as_str(), format!("docs block `{doc_name}` is defined twice (also in {previous})")));
                }
                docs.insert(doc_name, (path.clone(), body));
            }
        }
        properties.add_docs(&name, docs.into_iter().map(|(doc_name, (_, body))| (doc_name, body)).collect());

        let mut models = BTreeMap::new();
        let mut sources = Vec::new();
        let mut tests = Vec::new();
        let mut macros = Vec::new();
        let mut seeds = Vec::new();
        let mut model_docs: Vec<(String, Value)> = Vec::new();
        let mut snapshot_docs: Vec<(String, Value)> = Vec::new();
        let mut seed_docs: Vec<Value> = Vec::new();
        for (path, text) in &self.0 {
            if let Some(relative) = under(path, &model_paths) {
                if let Some(stem) = relative.strip_suffix(".sql") {
                    let model_name = stem.rsplit('/').next().unwrap_or(stem).to_string();
                    let folders: Vec<&str> = stem.split('/').collect();
                    let mut config = ConfigValues::new();
                    if let Some(tree) = &folder_configs {
                        apply_folder_configs(tree, &folders[..folders.len() - 1], &mut config);
                    }
                    if let Some(previous) = models.get(&model_name).map(|m: &Model| m.path.clone()) {
                        return Err(Error::project(
                            path.as_str(),
                            format!("model `{model_name}` is defined twice (also in {previous})"),
                        ));
                    }
                    models.insert(
                        model_name.clone(),
                        Model {
                            name: model_name,
                            path: path.clone(),
                            sql: text.clone(),
                            description: None,
                            config,
                            package: None,
                        },
                    );
                } else if relative.ends_with(".yml") || relative.ends_with(".yaml") {
                    let doc = yaml::parse(path, text)?;
                    sources.extend(parse_sources(path, &doc, &properties)?);
                    tests.extend(data_tests::declared(path, &doc)?);
                    if let Some(list) = doc.get("models").and_then(Value::as_array) {
                        model_docs.extend(list.iter().map(|m| (path.clone(), m.clone())));
                    }
                    if let Some(list) = doc.get("snapshots").and_then(Value::as_array) {
                        snapshot_docs.extend(list.iter().map(|m| (path.clone(), m.clone())));
                    }
                    if let Some(list) = doc.get("seeds").and_then(Value::as_array) {
                        seed_docs.extend(list.iter().cloned());
                    }
                }
            } else if under(path, &snapshot_paths).is_some() && (path.ends_with(".yml") || path.ends_with(".yaml")) {
                let doc = yaml::parse(path, text)?;
                tests.extend(data_tests::declared(path, &doc)?);
                if let Some(list) = doc.get("snapshots").and_then(Value::as_array) {
                    snapshot_docs.extend(list.iter().map(|m| (path.clone(), m.clone())));
                }
            } else if let Some(relative) = under(path, &snapshot_paths).filter(|r| r.ends_with(".sql")) {
                // A snapshot is a model materialized as `snapshot`: refs, selection and the DAG
                // treat it as one.
                let folders: Vec<&str> = relative.split('/').collect();
                for (snapshot_name, sql) in named_blocks(path, text, "snapshot")? {
                    add_snapshot(&mut models, snapshot_configs.as_ref(), &folders[..folders.len() - 1], path, snapshot_name, sql)?;
                }
            } else if under(path, &test_paths).is_some_and(|r| r.ends_with(".sql") && !r.starts_with("generic/")) {
                tests.push(data_tests::singular(path, text));
            } else if (under(path, &macro_paths).is_some() || under(path, &test_paths).is_some()) && path.ends_with(".sql") {
                macros.push(MacroFile {
                    path: path.clone(),
                    names: macro_names(text),
                    source: text.clone(),
                });
            } else if under(path, &seed_paths).is_some() && (path.ends_with(".yml") || path.ends_with(".yaml")) {
                let doc = yaml::parse(path, text)?;
                tests.extend(data_tests::declared(path, &doc)?);
                if let Some(list) = doc.get("seeds").and_then(Value::as_array) {
                    seed_docs.extend(list.iter().cloned());
                }
            } else if let Some(relative) = under(path, &seed_paths).filter(|_| path.ends_with(".csv")) {
                let stem = path.trim_end_matches(".csv");
                let folders: Vec<&str> = relative.split('/').collect();
                let mut config = ConfigValues::new();
                if let Some(tree) = &seed_configs {
                    apply_folder_configs(tree, &folders[..folders.len() - 1], &mut config);
                }
                seeds.push(Seed {
                    name: stem.rsplit('/').next().unwrap_or(stem).to_string(),
                    path: path.clone(),
                    csv: text.clone(),
                    column_types: column_types(config.get("column_types")),
                    package: None,
                });
            }
        }
        // A seed's properties may set its column types (over dbt_project.yml's).
        for doc in &seed_docs {
            let seed_name = doc.get("name").and_then(Value::as_str).unwrap_or_default();
            let declared = column_types(doc.get("config").and_then(|c| c.get("column_types")));
            if let Some(seed) = seeds.iter_mut().find(|s| s.name == seed_name) {
                seed.column_types.extend(declared);
            }
        }
        // A YAML snapshot (dbt 1.9) names its `relation:`; one without describes a `{% snapshot %}`.
        for (path, doc) in &snapshot_docs {
            let snapshot_name = doc.get("name").and_then(Value::as_str).unwrap_or_default();
            let Some(relation) = doc.get("relation").and_then(Value::as_str) else { continue };
            let folders: Vec<&str> = path.split('/').skip(1).collect();
            let folders = &folders[..folders.len().saturating_sub(1)];
            let sql = format!("select * from {{{{ {relation} }}}}\n");
            add_snapshot(&mut models, snapshot_configs.as_ref(), folders, path, snapshot_name.to_string(), sql)?;
        }
        // As dbt, YAML describing a model that has no SQL is left out, with its tests, and said.
        let mut warnings = Vec::new();
        let mut described_only = Vec::new();
        for (path, doc) in model_docs.into_iter().chain(snapshot_docs) {
            let model_name = doc.get("name").and_then(Value::as_str).unwrap_or_default();
            let Some(model) = models.get_mut(model_name) else {
                warnings.push(format!("{path}: describes model `{model_name}`, which has no .sql file; left out, as dbt does"));
                described_only.push(model_name.to_string());
                continue;
            };
            model.description = doc.get("description").and_then(Value::as_str).map(|d| properties.text(&path, d)).transpose()?;
            if let Some(config) = doc.get("config").and_then(Value::as_object) {
                model.config.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        // A model's config is read from dbt_project.yml and its YAML: Jinja in it is rendered once,
        // but hooks, as dbt renders them when they run.
        for model in models.values_mut() {
            let place = model.path.clone();
            for (key, value) in model.config.iter_mut() {
                if !key.replace('_', "-").ends_with("-hook") {
                    *value = properties.value(&place, value)?;
                }
            }
        }
        tests.retain(|test| match &test.kind {
            TestKind::Generic(generic) => !matches!(&generic.on, Tested::Node(node) if described_only.contains(node) && !seeds.iter().any(|s| s.name == *node)),
            TestKind::Singular { .. } => true,
        });
        check_tests(&tests, &models, &seeds, &sources)?;
        // dbt_project.yml's `data_tests:` configs, under whatever a test sets itself.
        let test_configs = project_tree(root.get("data_tests").or_else(|| root.get("tests")), &name);
        for test in tests.iter_mut() {
            let mut config = ConfigValues::new();
            if let Some(tree) = &test_configs {
                apply_folder_configs(tree, &[], &mut config);
            }
            config.append(&mut test.config);
            test.config = config;
        }
        Ok(Project {
            name,
            dialect,
            models,
            sources,
            macros,
            packages: Vec::new(),
            dispatch: dispatch_orders(project_file, &root)?,
            warnings,
            seeds,
            tests,
            vars,
            files: self.clone(),
        })
    }
}

/// The packages' models, seeds, sources and data tests join the project's, as dbt builds every
/// package's: a model or seed whose name the project (or another package) has is an error, as
/// both would be written to the same relation; dbt_project.yml's configs for a package's models
/// (`models: <package>: …`, and its top-level `+key`s) go over the package's own.
fn adopt_packages(project: &mut Project) -> Result<()> {
    let root = yaml::parse("dbt_project.yml", project.files.0.get("dbt_project.yml").map(String::as_str).unwrap_or_default())?;
    let taken = |project: &Project, name: &str| {
        project.models.get(name).map(|m| m.path.clone()).or_else(|| project.seeds.iter().find(|s| s.name == name).map(|s| s.path.clone()))
    };
    for package in project.packages.clone() {
        let configs = project_tree(root.get("models"), &package.name);
        for mut model in package.models {
            if let Some(previous) = taken(project, &model.name) {
                return Err(Error::project(model.path.as_str(), format!("model `{}` is defined twice (also in {previous})", model.name)));
            }
            if let Some(tree) = &configs {
                // The folders below the package's model path, as in the package's own dbt_project.yml.
                let inside = model.path.strip_prefix(&format!("{}/", package.root)).unwrap_or(&model.path);
                let folders: Vec<&str> = inside.split('/').skip(1).collect();
                let mut over = ConfigValues::new();
                apply_folder_configs(tree, &folders[..folders.len().saturating_sub(1)], &mut over);
                model.config.extend(over);
            }
            project.models.insert(model.name.clone(), model);
        }
        for seed in package.seeds {
            if let Some(previous) = taken(project, &seed.name) {
                return Err(Error::project(seed.path.as_str(), format!("seed `{}` is defined twice (also in {previous})", seed.name)));
            }
            project.seeds.push(seed);
        }
        project.sources.extend(package.sources);
        project.tests.extend(package.tests);
    }
    Ok(())
}

/// `dispatch:` in dbt_project.yml: the packages `adapter.dispatch(name, macro_namespace)`
/// searches, in order, for each namespace listed.
fn dispatch_orders(file: &str, root: &Value) -> Result<BTreeMap<String, Vec<String>>> {
    let Some(entries) = root.get("dispatch") else { return Ok(BTreeMap::new()) };
    let malformed = || Error::project(file, "`dispatch:` is a list of `macro_namespace:` with its `search_order:` (a list of package names)");
    let mut orders = BTreeMap::new();
    for entry in entries.as_array().ok_or_else(malformed)? {
        let namespace = entry.get("macro_namespace").and_then(Value::as_str).ok_or_else(malformed)?;
        let order = entry.get("search_order").and_then(Value::as_array).ok_or_else(malformed)?;
        let order = order.iter().map(|p| p.as_str().map(str::to_string).ok_or_else(malformed)).collect::<Result<Vec<_>>>()?;
        orders.insert(namespace.to_string(), order);
    }
    Ok(orders)
}

/// Every generic test reads a node or source table the project has, and no two tests share a
/// name (dbt refuses both).
fn check_tests(tests: &[DataTest], models: &BTreeMap<String, Model>, seeds: &[Seed], sources: &[Source]) -> Result<()> {
    let mut names = BTreeMap::new();
    for test in tests {
        if let Some(other) = names.insert(test.name.as_str(), test.path.as_str()) {
            return Err(Error::project(&test.path, format!("two tests are named `{}` (the other is in {other})", test.name)));
        }
        let TestKind::Generic(generic) = &test.kind else { continue };
        let found = match &generic.on {
            Tested::Node(name) => models.contains_key(name) || seeds.iter().any(|s| &s.name == name),
            Tested::Source { source, table } => {
                sources.iter().any(|s| &s.name == source && s.tables.iter().any(|t| &t.name == table))
            }
        };
        if !found {
            let what = match &generic.on {
                Tested::Node(name) => format!("`{name}`, which is not a model or seed of the project"),
                Tested::Source { source, table } => format!("source `{source}.{table}`, which no .yml file declares"),
            };
            return Err(Error::project(&test.path, format!("test `{}` reads {what}", test.name)));
        }
    }
    Ok(())
}

/// A file's text, read while it fits in what is `left` of [`Limit::ProjectBytes`] (its size is
/// not trusted: an archive can declare anything).
pub(crate) fn read_text(from: impl std::io::Read, left: &mut u64, place: &str) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    from.take(left.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::project(place, e.to_string()))?;
    let read = bytes.len() as u64;
    *left = left.checked_sub(read).ok_or_else(|| Limit::ProjectBytes.exceeded(None, place))?;
    String::from_utf8(bytes).map_err(|_| Error::project(place, "is not UTF-8 text"))
}

/// A snapshot, read as the model it is: materialized `snapshot`, under dbt_project.yml's
/// `snapshots:` configs for its `folders`; refused when a model or snapshot has its name.
fn add_snapshot(
    models: &mut BTreeMap<String, Model>,
    configs: Option<&Value>,
    folders: &[&str],
    path: &str,
    name: String,
    sql: String,
) -> Result<()> {
    if let Some(previous) = models.get(&name) {
        return Err(Error::project(path, format!("snapshot `{name}` has the name of a model or snapshot in {}", previous.path)));
    }
    let mut config = ConfigValues::new();
    if let Some(tree) = configs {
        apply_folder_configs(tree, folders, &mut config);
    }
    config.insert("materialized".into(), Value::String("snapshot".into()));
    models.insert(name.clone(), Model { name, path: path.to_string(), sql, description: None, config, package: None });
    Ok(())
}

/// A seed's `column_types` config: column → SQL type (values that are not text are ignored).
fn column_types(config: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(types)) = config else { return BTreeMap::new() };
    types.iter().filter_map(|(column, t)| Some((column.clone(), t.as_str()?.to_string()))).collect()
}

/// The `{% kind name %} … {% endkind %}` blocks of a file (`snapshot`, `docs`), as (name, body);
/// text outside them is not part of the project, as in dbt.
fn named_blocks(path: &str, text: &str, kind: &str) -> Result<Vec<(String, String)>> {
    // Each `{% … %}` tag: where it starts, where it ends, and its words.
    let mut tags = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find("{%").map(|i| at + i) {
        let Some(close) = text[open..].find("%}").map(|i| open + i + 2) else { break };
        let inside = text[open + 2..close - 2].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        tags.push((open, close, inside));
        at = close;
    }
    let mut blocks = Vec::new();
    let mut tags = tags.into_iter();
    while let Some((_, body_start, inside)) = tags.next() {
        let Some(name) = inside.strip_prefix(kind).filter(|n| n.starts_with(char::is_whitespace)).map(str::trim) else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::project(path, format!("`{{% {kind} {name} %}}`: a {kind} block's name is letters, digits and _")));
        }
        let end = format!("end{kind}");
        let Some((body_end, _, _)) = tags.by_ref().find(|(_, _, t)| *t == end) else {
            return Err(Error::project(path, format!("`{{% {kind} {name} %}}` has no `{{% {end} %}}`")));
        };
        blocks.push((name.to_string(), text[body_start..body_end].to_string()));
    }
    Ok(blocks)
}

/// What of a dbt_project.yml config tree (`models:`, `seeds:`, …) configures this project's
/// resources: the configs at its top, which configure every project's, under the project's own
/// subtree.
fn project_tree(tree: Option<&Value>, project: &str) -> Option<Value> {
    let map = tree?.as_object()?;
    let mut merged: serde_json::Map<String, Value> = map.iter().filter(|(k, v)| config_key(k, v).is_some()).map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(own) = map.get(project).and_then(Value::as_object) {
        merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Some(Value::Object(merged))
}

/// The config a dbt_project.yml tree's entry sets: `+key`, or a known config key with a plain
/// value; any other key is a sub-folder.
fn config_key<'a>(key: &'a str, value: &Value) -> Option<&'a str> {
    key.strip_prefix('+').or_else(|| (KNOWN_KEYS.contains(&key) && !value.is_object()).then_some(key))
}

/// dbt_project.yml's `models:` tree for a resource in `folders`: deeper folders override
/// shallower ones.
fn apply_folder_configs(tree: &Value, folders: &[&str], config: &mut ConfigValues) {
    let Some(map) = tree.as_object() else { return };
    for (key, value) in map {
        if let Some(key) = config_key(key, value) {
            config.insert(key.to_string(), value.clone());
        }
    }
    if let Some((first, rest)) = folders.split_first() {
        if let Some(sub) = map.get(*first) {
            apply_folder_configs(sub, rest, config);
        }
    }
}

fn parse_sources(path: &str, doc: &Value, properties: &Properties<'_>) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for source in doc.get("sources").and_then(Value::as_array).into_iter().flatten() {
        let name = source
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::project(path, "a source needs a `name:`"))?;
        let schema = properties.text(path, source.get("schema").and_then(Value::as_str).unwrap_or(name))?;
        let mut tables = Vec::new();
        for table in source.get("tables").and_then(Value::as_array).into_iter().flatten() {
            let table_name = table
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::project(path, format!("a table of source `{name}` needs a `name:`")))?;
            let identifier = properties.text(path, table.get("identifier").and_then(Value::as_str).unwrap_or(table_name))?;
            let event_time = [table, source]
                .iter()
                .find_map(|node| node.get("config")?.get("event_time")?.as_str())
                .map(str::to_string);
            tables.push(SourceTable {
                name: table_name.to_string(),
                identifier,
                event_time,
            });
        }
        sources.push(Source {
            name: name.to_string(),
            path: path.to_string(),
            schema: if schema.is_empty() { DEFAULT_SCHEMA.to_string() } else { schema },
            tables,
        });
    }
    Ok(sources)
}

/// The names of the `{% macro name(...) %}` blocks in a macro file, and `test_name` for each
/// `{% test name(...) %}` (dbt's generic test blocks).
pub(crate) fn macro_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        rest = &rest[start + 2..];
        let tag = rest.trim_start_matches(['-', '+']).trim_start();
        let block = tag.strip_prefix("macro ").map(|after| ("", after)).or_else(|| tag.strip_prefix("test ").map(|after| ("test_", after)));
        if let Some((prefix, after)) = block {
            let name: String = after
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(format!("{prefix}{name}"));
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::warehouse::RelationName;

    fn project(files: &[(&str, &str)]) -> Result<Project> {
        let mut all = ProjectFiles::default();
        for (path, text) in files {
            all.insert(path, text);
        }
        all.parse()
    }

    /// dbt's adapter fixtures write these: Jinja in a source's schema and identifier, and in a
    /// config, rendered with `target` and the project's vars (a var's default when unset).
    #[test]
    fn jinja_in_yaml_properties_is_rendered() {
        let sources = "sources:\n  - name: raw\n    schema: \"{{ target.schema }}\"\n    tables:\n\
                       \x20     - name: seed\n        identifier: \"{{ var('seed_name', 'base') }}\"\n";
        let files = |vars: &str| {
            vec![
                (
                    "dbt_project.yml".to_string(),
                    format!("name: shop\n{vars}models:\n  shop:\n    +tags: [\"{{{{ target.name }}}}\"]\n    +post-hook: \"grant select on {{{{ this }}}}\"\n"),
                ),
                ("models/sources.yml".to_string(), sources.to_string()),
                ("models/orders.sql".to_string(), "select * from {{ source('raw', 'seed') }}".to_string()),
                ("models/orders.yml".to_string(), "models:\n  - name: orders\n    config:\n      materialized: \"{{ var('kind', 'view') }}\"\n".to_string()),
            ]
        };
        let read = |vars: &str| {
            let files = files(vars);
            project(&files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect::<Vec<_>>()).unwrap_or_else(|e| panic!("{e}"))
        };
        let defaults = read("");
        assert_eq!(defaults.source_table("raw", "seed").map(|(r, _)| r), Some(RelationName::new("main", "base")));
        let config = &defaults.models["orders"].config;
        assert_eq!(config.get("materialized"), Some(&Value::from("view")));
        assert_eq!(config.get("tags"), Some(&serde_json::json!(["dev"])));
        assert_eq!(config.get("post-hook"), Some(&Value::from("grant select on {{ this }}")), "rendered when it runs");
        let set = read("vars:\n  seed_name: seed_v2\n  kind: table\n");
        assert_eq!(set.source_table("raw", "seed").map(|(r, _)| r), Some(RelationName::new("main", "seed_v2")));
        assert_eq!(set.models["orders"].config.get("materialized"), Some(&Value::from("table")));

        let broken = project(&[("dbt_project.yml", "name: shop"), ("models/sources.yml", "sources:\n  - name: raw\n    schema: \"{{ var('where') }}\"\n")]);
        let error = broken.expect_err("an unset var without a default");
        assert!(error.to_string().starts_with("models/sources.yml: `{{ var('where') }}`: required var 'where' not found"), "{error}");
    }

    #[test]
    fn folder_configs_nest_and_schema_files_override() {
        let p = project(&[
            (
                "dbt_project.yml",
                "name: shop\nmodels:\n  +materialized: ephemeral\n  +incremental_predicates: [\"id != 2\"]\n  \
                 shop:\n    +materialized: table\n    staging:\n      +materialized: view\n",
            ),
            ("models/staging/stg_orders.sql", "select 1 as id"),
            ("models/top.sql", "select 1 as id"),
            ("models/marts/orders.sql", "select * from {{ ref('stg_orders') }}"),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: orders\n    description: All orders\n    config:\n      materialized: incremental\n    columns:\n      - name: id\n        data_tests: [unique, not_null, {accepted_values: {values: [1, 2]}}]\n",
            ),
            ("macros/cents.sql", "{% macro cents(x) %}{{ x }} * 100{% endmacro %}"),
            ("tests/generic/is_even.sql", "{% test is_even(model, column_name) %}select 1{% endtest %}"),
            ("tests/no_orders_lost.sql", "select * from {{ ref('orders') }} where id is null"),
            ("seeds/countries.csv", "code,name\nNL,Netherlands\n"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.models["stg_orders"].config["materialized"], "view");
        assert_eq!(p.models["top"].config["materialized"], "table");
        assert_eq!(p.models["orders"].config["incremental_predicates"], serde_json::json!(["id != 2"]));
        assert_eq!(p.models["orders"].config["materialized"], "incremental");
        assert_eq!(p.models["orders"].description.as_deref(), Some("All orders"));
        assert_eq!(p.tests.len(), 4);
        let names: Vec<&str> = p.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["unique_orders_id", "not_null_orders_id", "accepted_values_orders_id__1__2", "no_orders_lost"]);
        assert_eq!(p.macros[0].names, vec!["cents"]);
        assert_eq!(p.macros[1].names, vec!["test_is_even"]);
        assert_eq!(p.seeds[0].name, "countries");
    }

    /// Snapshots are read as dbt reads them: every block of a file (whitespace control and
    /// other tags inside), YAML ones naming a relation, each a model materialized as `snapshot`.
    #[test]
    fn snapshot_blocks_and_yaml_snapshots_are_models() {
        let blocks = "{%- snapshot a -%}\n{{ config(strategy='check') }}\n{% if true %}select 1 as id{% endif %}\n{%- endsnapshot -%}\n\
                      ignored text\n{% snapshot b %}select 2 as id{% endsnapshot %}";
        let yml = "snapshots:\n  - name: c\n    relation: ref('a')\n    config:\n      strategy: timestamp\n";
        let parsed = project(&[("dbt_project.yml", "name: p"), ("snapshots/two.sql", blocks), ("snapshots/more.yml", yml)]);
        let parsed = parsed.unwrap_or_else(|e| panic!("{e}"));
        let sql = |name: &str| parsed.models.get(name).map(|m| (m.sql.trim().to_string(), m.config.get("materialized").cloned()));
        let snapshot = Some(Value::String("snapshot".into()));
        assert_eq!(sql("a"), Some(("{{ config(strategy='check') }}\n{% if true %}select 1 as id{% endif %}".to_string(), snapshot.clone())));
        assert_eq!(sql("b"), Some(("select 2 as id".to_string(), snapshot.clone())));
        assert_eq!(sql("c"), Some(("select * from {{ ref('a') }}".to_string(), snapshot)));
        assert_eq!(parsed.models.get("c").and_then(|m| m.config.get("strategy")), Some(&Value::String("timestamp".into())));
        let open = project(&[("dbt_project.yml", "name: p"), ("snapshots/x.sql", "{% snapshot x %}select 1")]);
        assert_eq!(open.err().map(|e| e.to_string()).as_deref(), Some("snapshots/x.sql: `{% snapshot x %}` has no `{% endsnapshot %}`"));
    }

    /// A description reads `{% docs %}` blocks of .md files in the resource folders with
    /// `doc()`; a README beside dbt_project.yml is not a project file.
    #[test]
    fn descriptions_read_docs_blocks() {
        let docs = "{% docs orders %}\nOne row per **order**.\n{% enddocs %}\n\n{%- docs unused -%}x{%- enddocs -%}";
        let with_description = |description: &str| {
            project(&[
                ("dbt_project.yml", "name: shop"),
                ("models/orders.sql", "select 1 as id"),
                ("models/docs.md", docs),
                ("models/orders.yml", &format!("models:\n  - name: orders\n    description: '{description}'\n")),
            ])
        };
        let described = |description: &str| with_description(description).unwrap_or_else(|e| panic!("{e}")).models["orders"].description.clone();
        assert_eq!(described("{{ doc(\"orders\") }}").as_deref(), Some("\nOne row per **order**.\n"));
        assert_eq!(described("Orders. {{ doc(\"shop\", \"unused\") }}").as_deref(), Some("Orders. x"));
        let missing = with_description("{{ doc(\"order\") }}").err().map(|e| e.to_string());
        assert_eq!(
            missing.as_deref(),
            Some("models/orders.yml: `{{ doc(\"order\") }}`: no docs block `order` in project `shop` (a `{% docs order %}` block in a .md file)")
        );
        assert!(ProjectFiles::wants("models/docs.md") && ProjectFiles::wants("dbt_packages/utils/docs/macros.md"));
        assert!(!ProjectFiles::wants("README.md") && !ProjectFiles::wants("dbt_packages/utils/README.md"));
    }

    #[test]
    fn errors_name_the_file() {
        let err = project(&[("dbt_project.yml", "name: [unclosed")]).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.starts_with("dbt_project.yml:")), "{err:?}");
    }

    #[test]
    fn yaml_describing_a_model_without_sql_is_left_out_with_a_warning() {
        let described = project(&[
            ("dbt_project.yml", "name: x"),
            ("models/a.sql", "select 1 as id"),
            ("models/a.yml", "models:\n  - name: ghost\n    columns:\n      - name: id\n        tests: [unique]\n  - name: a\n    columns:\n      - name: id\n        tests: [unique]\n"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(described.warnings, ["models/a.yml: describes model `ghost`, which has no .sql file; left out, as dbt does"]);
        assert_eq!(described.tests.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["unique_a_id"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_in_a_project_folder_is_not_walked() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap_or(root)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        };
        write("dbt_project.yml", "name: p\n");
        write("models/a.sql", "select 1");
        write("shared/b.sql", "select 2");
        let link = |target: &std::path::Path, at: &str| symlink(target, root.join(at)).unwrap_or_else(|e| panic!("{e}"));
        link(root, "models/loop");
        link(&root.join("models"), "models/again");
        link(std::path::Path::new("/dev/zero"), "models/zero.sql");
        link(&root.join("shared/b.sql"), "models/b.sql");
        let files = ProjectFiles::read_dir(root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files.0.keys().collect::<Vec<_>>(), ["dbt_project.yml", "models/a.sql", "models/b.sql", "shared/b.sql"]);
    }

    #[test]
    fn files_from_anywhere_meet_the_import_filter_before_they_are_a_project() {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: p");
        files.insert("models/a.sql", "select 1");
        assert!(files.parse().is_ok());
        let planted_files = [
            "models/x.py",
            "../x.sql",
            "models/../../x.sql",
            "/etc/x.sql",
            "C:/x.sql",
            "models\\x.sql",
            "target/x.sql",
            ".git/x.yml",
            "dbt_packages/a/dbt_packages/b/x.sql",
            "dbt_packages/a/integration_tests/x.sql",
        ];
        for planted in planted_files {
            let mut bad = files.clone();
            bad.0.insert(planted.to_string(), "select 1".to_string());
            let error = bad.parse().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.starts_with(&format!("{planted}: not a file a dbt project reads")), "{planted}: {error}");
        }
        for read in ["dbt_packages/a/macros/x.sql", "p/dbt_packages/a/macros/x.sql", "integration_tests/x.sql"] {
            assert!(ProjectFiles::wants(read), "{read}");
        }
        let mut many = files.clone();
        many.0.extend((0..Limit::ProjectFiles.max()).map(|i| (format!("models/m{i}.sql"), "select 1".to_string())));
        assert!(matches!(many.parse(), Err(Error::Limit { limit: Limit::ProjectFiles, .. })));
    }
}
