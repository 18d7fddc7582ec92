//! The model graph: which models a model refs, and in what order to build them (dbt's
//! selection over it is `select`).

use std::collections::{BTreeMap, BTreeSet};

use crate::dbt::project::{Materialization, Project};
use crate::dbt::template::{self, CompileContext, CompiledModel, CompiledTest};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Dag {
    /// Model (or seed) → the models and seeds it refs.
    pub(super) parents: BTreeMap<String, BTreeSet<String>>,
    /// Every model and seed, parents before children.
    pub(super) order: Vec<String>,
    /// Each model as compiled to learn its refs (not incrementally): its config is final.
    pub(super) parsed: BTreeMap<String, CompiledModel>,
    /// Model, seed or test → its file.
    pub(super) paths: BTreeMap<String, String>,
    /// `source_name.table_name` → the models that read it.
    pub(super) sources: BTreeMap<String, BTreeSet<String>>,
    /// Every enabled data test, compiled, by name.
    pub(super) tests: BTreeMap<String, CompiledTest>,
    /// Test → what it reads, as selection nodes: models, seeds and `source:name.table`.
    pub(super) test_parents: BTreeMap<String, BTreeSet<String>>,
    /// Model, seed or test → the project or package it comes from.
    pub(super) owners: BTreeMap<String, String>,
}

impl Dag {
    /// Compiles every model once (not incrementally) to learn its refs; fails on an unknown
    /// ref or source, a template error, or a cycle.
    pub fn of(project: &Project, ctx: &CompileContext) -> Result<Dag> {
        let parse_ctx = CompileContext { is_incremental: false, ..ctx.clone() };
        let mut parents = BTreeMap::new();
        let mut parsed = BTreeMap::new();
        for name in project.models.keys() {
            let compiled = template::compile(project, name, &parse_ctx)?;
            parents.insert(name.clone(), compiled.refs.iter().cloned().collect::<BTreeSet<_>>());
            parsed.insert(name.clone(), compiled);
        }
        for seed in &project.seeds {
            if parents.insert(seed.name.clone(), BTreeSet::new()).is_some() {
                return Err(Error::project(&seed.path, format!("seed `{}` has the name of a model", seed.name)));
            }
        }
        let order = topological_order(project, &parents)?;
        let mut paths: BTreeMap<String, String> = project.models.values().map(|m| (m.name.clone(), m.path.clone()))
            .chain(project.seeds.iter().map(|s| (s.name.clone(), s.path.clone())))
            .collect();
        let mut tests = BTreeMap::new();
        for test in &project.tests {
            let compiled = template::compile_test(project, test, &parse_ctx)?;
            if compiled.config.enabled {
                paths.insert(compiled.name.clone(), compiled.path.clone());
                tests.insert(compiled.name.clone(), compiled);
            }
        }
        let mut sources = BTreeMap::<String, BTreeSet<String>>::new();
        let mut test_parents: BTreeMap<String, BTreeSet<String>> =
            tests.values().map(|t| (t.name.clone(), t.refs.iter().cloned().collect())).collect();
        for source in &project.sources {
            for table in &source.tables {
                let Some((relation, _)) = project.source_table(&source.name, &table.name) else { continue };
                let key = format!("{}.{}", source.name, table.name);
                let readers = parsed.values().filter(|m| m.sources.contains(&relation)).map(|m| m.name.clone());
                sources.entry(key.clone()).or_default().extend(readers);
                for test in tests.values().filter(|t| t.sources.contains(&relation)) {
                    test_parents.entry(test.name.clone()).or_default().insert(format!("source:{key}"));
                }
            }
        }
        let owner = |package: &Option<String>| package.clone().unwrap_or_else(|| project.name.clone());
        let owners = project.models.values().map(|m| (m.name.clone(), owner(&m.package)))
            .chain(project.seeds.iter().map(|s| (s.name.clone(), owner(&s.package))))
            .chain(project.tests.iter().map(|t| (t.name.clone(), owner(&t.package))))
            .collect();
        Ok(Dag { parents, order, parsed, paths, sources, tests, test_parents, owners })
    }

    /// A model compiled with `is_incremental()` false, as it was to build the graph; `None`
    /// for a seed.
    pub fn parsed(&self, model: &str) -> Option<&CompiledModel> {
        self.parsed.get(model)
    }

    /// What dbt calls a node: `model`, `snapshot` (a model materialized as one) or `seed`.
    pub fn resource_type(&self, node: &str) -> &'static str {
        match self.parsed.get(node) {
            Some(m) if m.config.materialized == Materialization::Snapshot => "snapshot",
            Some(_) => "model",
            None => "seed",
        }
    }

    /// The enabled data tests, by name.
    pub fn tests(&self) -> impl Iterator<Item = &CompiledTest> {
        self.tests.values()
    }

    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// What a node reads: a model's refs, a test's models, seeds and sources.
    pub fn parents(&self, node: &str) -> impl Iterator<Item = &String> {
        self.parents.get(node).or_else(|| self.test_parents.get(node)).into_iter().flatten()
    }

    pub(super) fn children(&self, model: &str) -> impl Iterator<Item = &String> {
        self.parents
            .iter()
            .filter(move |(_, ps)| ps.contains(model))
            .map(|(child, _)| child)
    }
}

fn topological_order(project: &Project, parents: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        model: &str,
        parents: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> std::result::Result<(), Vec<String>> {
        match marks.get(model) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|m| m == model).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(model.to_string());
                return Err(cycle);
            }
            None => {}
        }
        marks.insert(model.to_string(), Mark::Visiting);
        path.push(model.to_string());
        for parent in parents.get(model).into_iter().flatten() {
            visit(parent, parents, marks, path, order)?;
        }
        path.pop();
        marks.insert(model.to_string(), Mark::Done);
        order.push(model.to_string());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut order = Vec::new();
    for model in parents.keys() {
        visit(model, parents, &mut marks, &mut Vec::new(), &mut order).map_err(|cycle| {
            let file = project.model(&cycle[0]).map(|m| m.path.clone()).unwrap_or_default();
            Error::project(file, format!("ref cycle: {}", cycle.join(" -> ")))
        })?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::project::ProjectFiles;

    fn project(models: &[(&str, &str)]) -> Project {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: t");
        for (name, sql) in models {
            files.insert(&format!("models/{name}.sql"), sql);
        }
        files.parse().unwrap_or_else(|e| panic!("{e}"))
    }


    #[test]
    fn cycles_are_named() {
        let p = project(&[("a", "select * from {{ ref('b') }}"), ("b", "select * from {{ ref('a') }}")]);
        let err = Dag::of(&p, &CompileContext::default()).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("models/a.sql: ref cycle: a -> b -> a"));
    }
}
