//! dbt's node selection, as `--select` and `--exclude` write it: space-separated terms are a
//! union, comma-separated atoms within a term an intersection; an atom is a method and value
//! (`name`, `tag:`, `path:`, `config.KEY:`, `resource_type:`, `source:`; a bare name may use `*`)
//! with graph operators: `+m` / `2+m` (ancestors, all or N deep), `m+` / `m+1` (descendants),
//! `@m` (m, its descendants and their ancestors). Sources and data tests are nodes of the
//! graph, so `source:raw+` selects what reads `raw` and a test can be picked by name,
//! `test_type:` or `test_name:`; only models and seeds are ever built. A test runs when it is
//! picked or reads a picked node (dbt's eager indirect selection), unless `exclude` drops it
//! or a node it reads.

use std::collections::BTreeSet;

use super::Dag;
use crate::dbt::template::CompiledTest;
use crate::error::{Error, Result};

impl Dag {
    /// The models and seeds `select` picks, minus those `exclude` picks, in build order. An
    /// empty `select` picks everything.
    pub fn select(&self, select: &str, exclude: &str) -> Result<Vec<String>> {
        let chosen = if select.trim().is_empty() { self.order.iter().cloned().collect() } else { self.union(select)? };
        let excluded = if exclude.trim().is_empty() { BTreeSet::new() } else { self.union(exclude)? };
        Ok(self.order.iter().filter(|m| chosen.contains(*m) && !excluded.contains(*m)).cloned().collect())
    }

    /// The data tests a selection runs, by name.
    pub fn select_tests(&self, select: &str, exclude: &str) -> Result<Vec<&CompiledTest>> {
        let every = select.trim().is_empty();
        let chosen = if every { BTreeSet::new() } else { self.union(select)? };
        let excluded = if exclude.trim().is_empty() { BTreeSet::new() } else { self.union(exclude)? };
        let touches = |set: &BTreeSet<String>, test: &str| set.contains(test) || self.parents(test).any(|p| set.contains(p));
        Ok(self.tests().filter(|t| (every || touches(&chosen, &t.name)) && !touches(&excluded, &t.name)).collect())
    }

    pub(super) fn union(&self, selector: &str) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for term in selector.split_whitespace() {
            let mut atoms = term.split(',').filter(|a| !a.is_empty());
            let Some(first) = atoms.next() else { continue };
            let mut set = self.atom(first)?;
            for atom in atoms {
                let other = self.atom(atom)?;
                set.retain(|n| other.contains(n));
            }
            out.extend(set);
        }
        Ok(out)
    }

    fn atom(&self, atom: &str) -> Result<BTreeSet<String>> {
        let (at, rest) = match atom.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, atom),
        };
        let (up, rest) = match rest.split_once('+') {
            Some((depth, core)) if depth.chars().all(|c| c.is_ascii_digit()) && !core.is_empty() => (Some(depth_of(depth, atom)?), core),
            _ => (None, rest),
        };
        let (core, down) = match rest.rsplit_once('+') {
            Some((core, depth)) if depth.chars().all(|c| c.is_ascii_digit()) => (core, Some(depth_of(depth, atom)?)),
            _ => (rest, None),
        };
        let base = self.method(core, atom)?;
        let mut out = base.clone();
        if let Some(depth) = up {
            out.extend(self.walk(&base, depth, |n| self.parents(n).cloned().collect()));
        }
        if let Some(depth) = down.or(at.then_some(None)) {
            let below = self.walk(&base, depth, |n| self.next_down(n));
            if at {
                out.extend(self.walk(&below, None, |n| self.parents(n).cloned().collect()));
            }
            out.extend(below);
        }
        Ok(out)
    }

    /// The nodes a method and value name (`source:` ones are `source:name.table`).
    fn method(&self, core: &str, atom: &str) -> Result<BTreeSet<String>> {
        let nodes = || self.order.iter().chain(self.tests.keys());
        let text = |value: &serde_json::Value| value.as_str().map_or_else(|| value.to_string(), str::to_string);
        let (method, value) = core.split_once(':').unwrap_or(("", core));
        let found: BTreeSet<String> = match method {
            "" if value.contains('/') => return self.method(&format!("path:{value}"), atom),
            "" => nodes().filter(|n| glob(value, n)).cloned().collect(),
            "tag" => nodes()
                .filter(|n| {
                    let tags = self.parsed.get(*n).and_then(|m| m.values.get("tags"));
                    match tags {
                        Some(serde_json::Value::Array(tags)) => tags.iter().any(|t| text(t) == value),
                        Some(tag) => text(tag) == value,
                        None => false,
                    }
                })
                .cloned()
                .collect(),
            "path" => {
                let prefix = value.trim_end_matches('/');
                nodes()
                    .filter(|n| self.paths.get(*n).is_some_and(|p| p == prefix || p.starts_with(&format!("{prefix}/")) || glob(value, p)))
                    .cloned()
                    .collect()
            }
            "resource_type" => match value {
                "model" | "seed" | "snapshot" => self.order.iter().filter(|n| self.resource_type(n) == value).cloned().collect(),
                "test" => self.tests.keys().cloned().collect(),
                "source" => self.sources.keys().map(|s| format!("source:{s}")).collect(),
                _ => BTreeSet::new(),
            },
            "source" => self
                .sources
                .keys()
                .filter(|s| *s == value || s.split('.').next() == Some(value) || glob(value, s))
                .map(|s| format!("source:{s}"))
                .collect(),
            "test_type" => self
                .tests()
                .filter(|t| match value {
                    "generic" => t.test_name.is_some(),
                    "singular" => t.test_name.is_none(),
                    _ => false,
                })
                .map(|t| t.name.clone())
                .collect(),
            "package" => nodes().filter(|n| self.owners.get(*n).is_some_and(|o| o == value)).cloned().collect(),
            "test_name" => self.tests().filter(|t| t.test_name.as_deref() == Some(value)).map(|t| t.name.clone()).collect(),
            config if config.starts_with("config.") => {
                let key = &config["config.".len()..];
                nodes()
                    .filter(|n| match self.parsed.get(*n) {
                        Some(m) if key == "materialized" => format!("{:?}", m.config.materialized).eq_ignore_ascii_case(value),
                        Some(m) => m.values.get(key).is_some_and(|v| text(v) == value),
                        None => false,
                    })
                    .cloned()
                    .collect()
            }
            other => return Err(Error::Usage(format!("selector `{atom}`: unknown method `{other}:`"))),
        };
        if found.is_empty() && method.is_empty() && !value.contains('*') {
            return Err(Error::Usage(format!("selector `{atom}`: there is no model, seed or test named `{value}`")));
        }
        Ok(found)
    }

    /// What is one step downstream: a source's readers, a model's children.
    fn next_down(&self, node: &str) -> Vec<String> {
        match node.strip_prefix("source:") {
            Some(source) => self.sources.get(source).into_iter().flatten().cloned().collect(),
            None => self.children(node).cloned().collect(),
        }
    }

    /// Everything `next` reaches from `from` within `depth` steps (all, without one).
    fn walk(&self, from: &BTreeSet<String>, depth: Option<usize>, next: impl Fn(&str) -> Vec<String>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut frontier: Vec<String> = from.iter().cloned().collect();
        let mut step = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| step < d) {
            frontier = frontier.iter().flat_map(|n| next(n)).filter(|n| seen.insert(n.clone())).collect();
            step += 1;
        }
        seen
    }
}

fn depth_of(digits: &str, atom: &str) -> Result<Option<usize>> {
    if digits.is_empty() {
        return Ok(None);
    }
    digits.parse().map(Some).map_err(|_| Error::Usage(format!("selector `{atom}`: `{digits}` is not a depth")))
}

/// Shell-style `*` matching, as dbt's selectors allow.
fn glob(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else { return pattern == text };
    let Some(mut left) = text.strip_prefix(first) else { return false };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::project::{Project, ProjectFiles};
    use crate::dbt::template::CompileContext;

    fn dag() -> Dag {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: t\nmodels:\n  t:\n    marts:\n      +tags: [nightly]\n");
        files.insert("models/sources.yml", "version: 2\nsources:\n  - name: raw\n    schema: main\n    tables:\n      - name: orders\n");
        files.insert("models/staging/a.sql", "select * from {{ source('raw', 'orders') }}");
        files.insert("models/staging/b.sql", "select * from {{ ref('a') }}");
        files.insert("models/marts/c.sql", "{{ config(materialized='incremental', unique_key='id') }} select * from {{ ref('b') }}");
        files.insert("models/marts/d.sql", "{{ config(materialized='table') }} select 2 as id");
        files.insert("models/marts/e.sql", "select * from {{ ref('c') }} join {{ ref('d') }} using (id)");
        let project: Project = files.parse().unwrap_or_else(|e| panic!("{e}"));
        Dag::of(&project, &CompileContext::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn picks(select: &str, exclude: &str) -> Vec<String> {
        dag().select(select, exclude).unwrap_or_else(|e| panic!("{select}: {e}"))
    }

    #[test]
    fn names_and_graph_operators() {
        assert_eq!(picks("+c", ""), ["a", "b", "c"]);
        assert_eq!(picks("b+", ""), ["b", "c", "e"]);
        assert_eq!(picks("1+c", ""), ["b", "c"], "one generation up");
        assert_eq!(picks("a+1", ""), ["a", "b"], "one generation down");
        assert_eq!(picks("@c", ""), ["a", "b", "c", "d", "e"], "c, e and everything e needs");
        assert_eq!(picks("d a", ""), ["a", "d"], "space is a union");
        assert_eq!(picks("", "").len(), 5);
        assert!(dag().select("zzz", "").is_err());
    }

    #[test]
    fn a_comma_intersects() {
        assert_eq!(picks("b+,tag:nightly", ""), ["c", "e"]);
        assert_eq!(picks("+e,config.materialized:table", ""), ["d"]);
        assert_eq!(picks("a,d", ""), Vec::<String>::new(), "a and d have nothing in common");
    }

    #[test]
    fn methods() {
        assert_eq!(picks("tag:nightly", ""), ["c", "d", "e"]);
        assert_eq!(picks("path:models/staging", ""), ["a", "b"]);
        assert_eq!(picks("models/marts", ""), ["c", "d", "e"], "a bare path is a path selector");
        assert_eq!(picks("config.materialized:incremental", ""), ["c"]);
        assert_eq!(picks("config.unique_key:id", ""), ["c"]);
        assert_eq!(picks("resource_type:model", "").len(), 5);
        assert_eq!(picks("source:raw", ""), Vec::<String>::new(), "a source itself is never built");
        assert_eq!(picks("source:raw.orders+1", ""), ["a"]);
        assert_eq!(picks("source:raw+", "").len(), 4, "everything downstream of raw");
        assert_eq!(picks("*", "").len(), 5);
        assert!(dag().select("colour:red", "").is_err());
    }

    #[test]
    fn exclude_removes_what_it_selects() {
        assert_eq!(picks("", "tag:nightly"), ["a", "b"]);
        assert_eq!(picks("b+", "e"), ["b", "c"]);
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob("stg_*", "stg_orders") && glob("*_metrics", "daily_metrics") && glob("s*r*s", "stg_orders"));
        assert!(!glob("stg_*", "daily_metrics") && !glob("a*b", "ab_c"));
    }
}
