//! A project's packages: those `dbt deps` installed under `dbt_packages/` (dropped with the
//! project), `local:` ones in the project's own files, and Backfill's own `dbt_utils` (the dbt
//! hub cannot be reached from a browser), which every project has unless it brings its own.
//! Each is read as a project is: its macros and generic tests are called by its name, and its
//! models, seeds, sources and data tests join the project's (`adopt`), as dbt builds them. A
//! package that `packages.yml` or `dependencies.yml` names and none of these holds is an error
//! naming it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{DataTest, MacroFile, Model, ProjectFiles, Seed, Source, yaml};
use crate::error::{Error, Result};

/// Where `dbt deps` installs packages, relative to the project root.
pub const INSTALLED: &str = "dbt_packages";

/// Backfill's dbt_utils, as a package's files.
const DBT_UTILS: [(&str, &str); 11] = [
    ("dbt_project.yml", include_str!("dbt_utils/dbt_project.yml")),
    ("macros/date_spine.sql", include_str!("dbt_utils/macros/date_spine.sql")),
    ("macros/deduplicate.sql", include_str!("dbt_utils/macros/deduplicate.sql")),
    ("macros/generate_surrogate_key.sql", include_str!("dbt_utils/macros/generate_surrogate_key.sql")),
    ("macros/generic_tests.sql", include_str!("dbt_utils/macros/generic_tests.sql")),
    ("macros/get_column_values.sql", include_str!("dbt_utils/macros/get_column_values.sql")),
    ("macros/pivot.sql", include_str!("dbt_utils/macros/pivot.sql")),
    ("macros/safe_math.sql", include_str!("dbt_utils/macros/safe_math.sql")),
    ("macros/star.sql", include_str!("dbt_utils/macros/star.sql")),
    ("macros/union_relations.sql", include_str!("dbt_utils/macros/union_relations.sql")),
    ("macros/unpivot.sql", include_str!("dbt_utils/macros/unpivot.sql")),
];

/// One package: its name (its `dbt_project.yml`'s) and what it defines, every path from the
/// root project's folder (`dbt_packages/dbt_utils/macros/star.sql`), or `dbt_utils/…` for the
/// built-in one.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    /// Its folder: `dbt_packages/x`, a `local:` path, or `dbt_utils` for the built-in one.
    pub root: String,
    pub macros: Vec<MacroFile>,
    pub models: Vec<Model>,
    pub seeds: Vec<Seed>,
    pub sources: Vec<Source>,
    pub tests: Vec<DataTest>,
    /// Its dbt_project.yml's `vars:`, which its own models read under the project's.
    pub vars: serde_json::Map<String, Value>,
}

/// Backfill's dbt_utils as the files of a dbt package, for exports to ship.
pub fn builtin_dbt_utils() -> ProjectFiles {
    let mut files = ProjectFiles::default();
    for (path, text) in DBT_UTILS {
        files.insert(path, text);
    }
    files
}

/// Every package `files` (a root project's) has or names; `vars` are the invocation's.
pub(super) fn resolve(files: &ProjectFiles, vars: &serde_json::Map<String, Value>) -> Result<Vec<Package>> {
    let mut found: BTreeMap<String, Package> = BTreeMap::new();
    // A folder of dbt_packages/ is a package if it has a dbt_project.yml; it is found by its
    // `name:`, and by its folder's name (a git package's folder is its repository's).
    let mut folders: BTreeMap<String, String> = BTreeMap::new();
    for path in files.0.keys() {
        let Some(folder) = path.strip_prefix(INSTALLED).and_then(|p| p.strip_prefix('/')).and_then(|p| p.strip_suffix("/dbt_project.yml")) else {
            continue;
        };
        if !folder.contains('/') {
            let package = read(files, &format!("{INSTALLED}/{folder}"), vars)?;
            folders.insert(folder.to_string(), package.name.clone());
            found.insert(package.name.clone(), package);
        }
    }
    for (file, text) in ["packages.yml", "dependencies.yml"].iter().filter_map(|f| Some((*f, files.0.get(*f)?))) {
        for entry in declared(file, text)? {
            match entry {
                Declared::Local(path) => {
                    let package = read(files, &path, vars).map_err(|e| match e {
                        Error::Project { message, .. } if !files.0.contains_key(&format!("{path}/dbt_project.yml")) => {
                            Error::project(file, format!("local package `{path}`: {message}"))
                        }
                        other => other,
                    })?;
                    found.insert(package.name.clone(), package);
                }
                Declared::Remote(name) => {
                    let installed = found.contains_key(&name) || folders.contains_key(&name);
                    if !installed && name != "dbt_utils" {
                        return Err(Error::project(
                            file,
                            format!(
                                "package `{name}` is not installed: Backfill cannot reach the dbt hub or git; run `dbt deps` \
                                 and add the project with its {INSTALLED}/ folder (dbt_utils is built in)"
                            ),
                        ));
                    }
                }
            }
        }
    }
    if !found.contains_key("dbt_utils") {
        let package = parsed(&builtin_dbt_utils(), "dbt_utils", vars)?;
        found.insert(package.name.clone(), package);
    }
    Ok(found.into_values().collect())
}

/// A package entry of packages.yml: where it comes from decides how it is found.
enum Declared {
    /// `local: path`, relative to the project root.
    Local(String),
    /// `package: owner/name` (the hub), `git: url`, `tarball:`, `private:`, a `local:` path
    /// outside the project: by its name.
    Remote(String),
}

fn declared(file: &str, text: &str) -> Result<Vec<Declared>> {
    let doc = yaml::parse(file, text)?;
    let Some(entries) = doc.get("packages") else { return Ok(Vec::new()) };
    let entries = entries.as_array().ok_or_else(|| Error::project(file, "`packages:` is not a list"))?;
    entries
        .iter()
        .map(|entry| {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).map(|s| s.trim().trim_end_matches('/'));
            // A local package outside the project is found as `dbt deps` installs it, by its
            // folder's name.
            let local = text("local");
            if let Some(path) = local.and_then(normalized) {
                return Ok(Declared::Local(path));
            }
            let named = text("name").or_else(|| {
                let spec = local.or_else(|| text("package")).or_else(|| text("git")).or_else(|| text("private")).or_else(|| text("tarball"))?;
                let last = spec.rsplit(['/', ':']).next()?;
                Some(last.trim_end_matches(".git").trim_end_matches(".tar.gz"))
            });
            let name = named.ok_or_else(|| Error::project(file, format!("a package entry names no package: {entry}")))?;
            // dbt's hub names packages with dashes where their projects have underscores.
            Ok(Declared::Remote(name.replace('-', "_")))
        })
        .collect()
}

/// A `local:` path as a folder of the project (`./x/` is `x`), or `None` when it leaves it.
fn normalized(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    (!parts.is_empty() && !path.starts_with('/') && parts.iter().all(|p| *p != "..")).then(|| parts.join("/"))
}

/// The package in the project's folder `root`.
fn read(files: &ProjectFiles, root: &str, vars: &serde_json::Map<String, Value>) -> Result<Package> {
    let prefix = format!("{root}/");
    let own = files.0.iter().filter_map(|(path, text)| Some((path.strip_prefix(&prefix)?.to_string(), text.clone())));
    parsed(&ProjectFiles(own.collect()), root, vars)
}

/// A package's own files read as a project; its errors name files from the root project's
/// folder (`place`).
fn parsed(files: &ProjectFiles, place: &str, vars: &serde_json::Map<String, Value>) -> Result<Package> {
    let project = files.parse_package(vars).map_err(|e| match e {
        Error::Project { file, message } => Error::project(format!("{place}/{file}"), message),
        other => other,
    })?;
    let callable = project.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && project.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !callable {
        return Err(Error::project(format!("{place}/dbt_project.yml"), format!("package name `{}` is not a name its macros can be called by", project.name)));
    }
    let placed = |path: &str| format!("{place}/{path}");
    let macros = project.macros.into_iter().map(|m| MacroFile { path: placed(&m.path), ..m }).collect();
    let name = project.name;
    let models = project.models.into_values().map(|m| Model { path: placed(&m.path), package: Some(name.clone()), ..m }).collect();
    let seeds = project.seeds.into_iter().map(|s| Seed { path: placed(&s.path), package: Some(name.clone()), ..s }).collect();
    let sources = project.sources.into_iter().map(|s| Source { path: placed(&s.path), ..s }).collect();
    let tests = project.tests.into_iter().map(|t| DataTest { path: placed(&t.path), package: Some(name.clone()), ..t }).collect();
    Ok(Package { name, root: place.to_string(), macros, models, seeds, sources, tests, vars: project.vars })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(files: &[(&str, &str)]) -> Result<Vec<(String, Vec<String>)>> {
        let mut project = ProjectFiles::default();
        project.insert("dbt_project.yml", "name: shop\n");
        for (path, text) in files {
            project.insert(path, text);
        }
        let found = project.parse()?.packages;
        Ok(found.into_iter().map(|p| (p.name, p.macros.into_iter().map(|m| m.path).collect())).collect())
    }

    #[test]
    fn every_project_has_dbt_utils_unless_it_brings_its_own() {
        let found = packages(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "dbt_utils");
        assert!(found[0].1.contains(&"dbt_utils/macros/star.sql".to_string()), "{:?}", found[0].1);
        let own = [
            ("dbt_packages/dbt_utils/dbt_project.yml", "name: dbt_utils\n"),
            ("dbt_packages/dbt_utils/macros/sql/star.sql", "{% macro star(from) %}*{% endmacro %}"),
        ];
        let found = packages(&own).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found, [("dbt_utils".to_string(), vec!["dbt_packages/dbt_utils/macros/sql/star.sql".to_string()])]);
    }

    #[test]
    fn local_packages_are_read_from_the_projects_own_folders() {
        let files = [
            ("packages.yml", "packages:\n  - local: ./libs/money/\n  - local: ../dbt_utils\n"),
            ("libs/money/dbt_project.yml", "name: money\nmacro-paths: [src]\n"),
            ("libs/money/src/units.sql", "{% macro cents(x) %}{{ x }} / 100{% endmacro %}"),
        ];
        let found = packages(&files).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["dbt_utils", "money"], "a local package outside the project is found as dbt deps installs it");
        assert_eq!(found[1].1, ["libs/money/src/units.sql"]);
        let missing = packages(&[("packages.yml", "packages:\n  - local: libs/gone\n")]).err().map(|e| e.to_string());
        assert_eq!(missing.as_deref(), Some("packages.yml: local package `libs/gone`: missing: a project needs a dbt_project.yml"));
    }

    #[test]
    fn a_package_that_is_not_there_or_cannot_be_called_is_an_error_naming_it() {
        let error = |files: &[(&str, &str)]| packages(files).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error(&[("packages.yml", "packages:\n  - git: \"https://github.com/acme/dbt-money.git\"\n    revision: v1\n")])
                .starts_with("packages.yml: package `dbt_money` is not installed: "),
        );
        assert_eq!(error(&[("dependencies.yml", "packages: {a: 1}\n")]), "dependencies.yml: `packages:` is not a list");
        assert_eq!(
            error(&[("dbt_packages/x/dbt_project.yml", "name: my-money\n")]),
            "dbt_packages/x/dbt_project.yml: package name `my-money` is not a name its macros can be called by"
        );
    }
}
