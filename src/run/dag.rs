//! The model graph: which models a model refs, in what order to build them, and dbt's
//! selection syntax (`a,b`, `a b`, `+a` for a and everything upstream, `a+` for downstream).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::project::Project;
use crate::template::{self, CompileContext, CompiledModel};

#[derive(Debug, Clone)]
pub struct Dag {
    /// Model (or seed) → the models and seeds it refs.
    parents: BTreeMap<String, BTreeSet<String>>,
    /// Every model and seed, parents before children.
    order: Vec<String>,
    /// Each model as compiled to learn its refs (not incrementally): its config is final.
    parsed: BTreeMap<String, CompiledModel>,
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
        Ok(Dag { parents, order, parsed })
    }

    /// A model compiled with `is_incremental()` false, as it was to build the graph; `None`
    /// for a seed.
    pub fn parsed(&self, model: &str) -> Option<&CompiledModel> {
        self.parsed.get(model)
    }

    pub fn order(&self) -> &[String] {
        &self.order
    }

    pub fn parents(&self, model: &str) -> impl Iterator<Item = &String> {
        self.parents.get(model).into_iter().flatten()
    }

    fn children(&self, model: &str) -> impl Iterator<Item = &String> {
        self.parents
            .iter()
            .filter(move |(_, ps)| ps.contains(model))
            .map(|(child, _)| child)
    }

    /// The models a dbt `--select` picks, in build order. Empty selects everything.
    pub fn select(&self, selector: &str) -> Result<Vec<String>> {
        let items: Vec<&str> = selector
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(self.order.clone());
        }
        let mut chosen = BTreeSet::new();
        for item in items {
            let upstream = item.starts_with('+');
            let downstream = item.ends_with('+');
            let name = item.trim_matches('+');
            if !self.parents.contains_key(name) {
                return Err(Error::Usage(format!("--select {item}: there is no model named `{name}`")));
            }
            chosen.insert(name.to_string());
            if upstream {
                self.walk(name, &mut chosen, |dag, m| dag.parents(m).cloned().collect());
            }
            if downstream {
                self.walk(name, &mut chosen, |dag, m| dag.children(m).cloned().collect());
            }
        }
        Ok(self.order.iter().filter(|m| chosen.contains(*m)).cloned().collect())
    }

    fn walk(&self, from: &str, seen: &mut BTreeSet<String>, next: impl Fn(&Dag, &str) -> Vec<String>) {
        let mut stack = vec![from.to_string()];
        while let Some(model) = stack.pop() {
            for n in next(self, &model) {
                if seen.insert(n.clone()) {
                    stack.push(n);
                }
            }
        }
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
    use crate::project::ProjectFiles;

    fn project(models: &[(&str, &str)]) -> Project {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: t");
        for (name, sql) in models {
            files.insert(&format!("models/{name}.sql"), sql);
        }
        files.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn selects_like_dbt() {
        let p = project(&[
            ("a", "select 1"),
            ("b", "select * from {{ ref('a') }}"),
            ("c", "select * from {{ ref('b') }}"),
            ("d", "select 2"),
        ]);
        let dag = Dag::of(&p, &CompileContext::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dag.select("+c").ok(), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(dag.select("b+").ok(), Some(vec!["b".into(), "c".into()]));
        assert_eq!(dag.select("d a").ok(), Some(vec!["a".into(), "d".into()]));
        assert_eq!(dag.select("").map(|m| m.len()).ok(), Some(4));
        assert!(dag.select("zzz").is_err());
    }

    #[test]
    fn cycles_are_named() {
        let p = project(&[("a", "select * from {{ ref('b') }}"), ("b", "select * from {{ ref('a') }}")]);
        let err = Dag::of(&p, &CompileContext::default()).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("models/a.sql: ref cycle: a -> b -> a"));
    }
}
