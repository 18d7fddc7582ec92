//! `dbt ls`: the nodes a selection picks (models, seeds, snapshots, sources and data tests),
//! each as dbt lists it, in dbt's order (by unique id).

use super::Dag;
use crate::dbt::project::Project;
use crate::error::{Error, Result};

/// The resource types `ls --resource-type` knows.
pub const RESOURCE_TYPES: [&str; 5] = ["model", "seed", "snapshot", "source", "test"];

/// One node as `dbt ls` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Listed {
    pub resource_type: &'static str,
    /// dbt's search name: a node's name, a source table's `source.table`.
    pub name: String,
    /// The file that defines it (a source's or generic test's .yml).
    pub original_file_path: String,
    /// dbt's fully qualified name: project, folders, name.
    pub fqn: Vec<String>,
    /// What it reads, as node names (`source:name.table` for sources).
    pub depends_on: Vec<String>,
}

impl Listed {
    /// `dbt ls`'s default output: the fqn, dotted (a source as `source:project.source.table`).
    pub fn selector(&self) -> String {
        match self.resource_type {
            "source" => format!("source:{}", self.fqn.join(".")),
            _ => self.fqn.join("."),
        }
    }

    /// dbt's unique id without a test's hash: what dbt sorts `ls` by.
    fn sort_key(&self) -> String {
        format!("{}.{}.", self.resource_type, self.fqn.first().map(String::as_str).unwrap_or_default()) + &self.name
    }
}

impl Dag {
    /// The nodes `select` minus `exclude` picks, of the given resource types (every type when
    /// none is given).
    pub fn list(&self, project: &Project, select: &str, exclude: &str, resource_types: &[String]) -> Result<Vec<Listed>> {
        if let Some(unknown) = resource_types.iter().find(|t| !RESOURCE_TYPES.contains(&t.as_str()) && *t != "all") {
            return Err(Error::Usage(format!("--resource-type `{unknown}` is not one of {}, all", RESOURCE_TYPES.join(", "))));
        }
        let wanted = |kind: &str| resource_types.is_empty() || resource_types.iter().any(|t| t == kind || t == "all");
        // A package's node is named and placed from its package's folder, as dbt lists it: its
        // owner and its path there.
        let placed = |name: &str, path: &str| -> (String, String) {
            match self.owners.get(name).and_then(|owner| project.packages.iter().find(|p| p.name == *owner)) {
                Some(package) => (package.name.clone(), path.strip_prefix(&format!("{}/", package.root)).unwrap_or(path).to_string()),
                None => (project.name.clone(), path.to_string()),
            }
        };
        let fqn = |owner: &str, path: &str, name: &str| {
            let folders = path.split('/').skip(1).collect::<Vec<_>>();
            let mut fqn = vec![owner.to_string()];
            fqn.extend(folders[..folders.len().saturating_sub(1)].iter().map(|f| f.to_string()));
            fqn.push(name.to_string());
            fqn
        };
        let mut listed = Vec::new();
        for name in self.select(select, exclude)? {
            let resource_type = self.resource_type(&name);
            let (owner, path) = placed(&name, self.paths.get(&name).map(String::as_str).unwrap_or_default());
            let depends_on = self.parents(&name).cloned().collect();
            let mut fqn = fqn(&owner, &path, &name);
            // A `{% snapshot %}`'s file is part of its name (a YAML snapshot's is not).
            if let (Some(stem), "snapshot") = (path.strip_suffix(".sql").and_then(|p| p.rsplit('/').next()), resource_type) {
                fqn.insert(fqn.len() - 1, stem.to_string());
            }
            listed.push(Listed { resource_type, fqn, name, original_file_path: path, depends_on });
        }
        let chosen = if select.trim().is_empty() { None } else { Some(self.union(select)?) };
        let excluded = if exclude.trim().is_empty() { Default::default() } else { self.union(exclude)? };
        for source in &project.sources {
            for table in &source.tables {
                let key = format!("source:{}.{}", source.name, table.name);
                if chosen.as_ref().is_some_and(|c| !c.contains(&key)) || excluded.contains(&key) {
                    continue;
                }
                // A package's source is declared in one of its files.
                let package = project.packages.iter().find(|p| source.path.starts_with(&format!("{}/", p.root)));
                let (owner, path) = match package {
                    Some(package) => (package.name.clone(), source.path[package.root.len() + 1..].to_string()),
                    None => (project.name.clone(), source.path.clone()),
                };
                listed.push(Listed {
                    resource_type: "source",
                    name: format!("{}.{}", source.name, table.name),
                    original_file_path: path,
                    fqn: vec![owner, source.name.clone(), table.name.clone()],
                    depends_on: Vec::new(),
                });
            }
        }
        for test in self.select_tests(select, exclude)? {
            let (owner, path) = placed(&test.name, &test.path);
            listed.push(Listed {
                resource_type: "test",
                name: test.name.clone(),
                fqn: fqn(&owner, &path, &test.name),
                original_file_path: path,
                depends_on: self.parents(&test.name).cloned().collect(),
            });
        }
        listed.retain(|l| wanted(l.resource_type));
        listed.sort_by_key(Listed::sort_key);
        Ok(listed)
    }
}
