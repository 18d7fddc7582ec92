//! The layout ARCHITECTURE.md describes, checked on the source: each folder of `src/` imports
//! only the folders below it, no two modules import each other (directly or round a loop),
//! and the generic layers (`sql/`, `dbt/`) know nothing of the course, its data or the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every folder (or root module) and what it may import. `error`, `limits` and `serde_dates`
/// are every layer's; `sources` and `dbt` stand side by side on `sql`.
const LAYERS: &[(&str, &[&str])] = &[
    ("error", &["limits"]),
    ("limits", &["error"]),
    ("serde_dates", &[]),
    ("sql", &[]),
    ("sources", &["sql"]),
    ("dbt", &["sql"]),
    ("orchestrate", &["sql", "sources", "dbt"]),
    ("course", &["sql", "sources", "dbt", "orchestrate"]),
    ("view", &["sql", "sources", "dbt", "orchestrate", "course"]),
    ("worker", &["sql", "sources", "dbt", "orchestrate", "course", "view"]),
    ("ui", &["sql", "sources", "dbt", "orchestrate", "course", "view", "worker"]),
];
const EVERYONES: &[&str] = &["error", "limits", "serde_dates"];

/// Words the generic layers must not hold: the course's data and story, and CLI invocations.
const COURSE_WORDS: &[&str] = &["trips", "zones", "pickup_datetime", "lesson", "`backfill "];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `src/dbt/run/select.rs` is module `dbt::run`; `src/error.rs` is `error`. The binaries (their
/// entry files and the CLI) belong to no layer: they are outside the library and the compiler
/// lets them name only what `lib.rs` re-exports.
fn module_of(relative: &Path) -> Option<String> {
    let parts: Vec<String> = relative.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [file] if ["lib", "main", "worker_main"].contains(&file.as_str()) => None,
        [folder, ..] if folder == "cli" => None,
        [file] => Some(file.clone()),
        [folder, file] if file == "mod" => Some(folder.clone()),
        [folder, module, ..] => Some(format!("{folder}::{module}")),
        _ => None,
    }
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// The modules a file names: `crate::a::b`.
fn imports(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let mut names = path.split("::").filter(|n| !n.is_empty());
        let Some(first) = names.next() else { continue };
        let is_folder = LAYERS.iter().any(|(l, _)| *l == first) && !EVERYONES.contains(&first);
        match (is_folder, names.next()) {
            (true, Some(second)) if second.chars().next().is_some_and(|c| c.is_lowercase()) => {
                found.insert(format!("{first}::{second}"));
            }
            _ => {
                found.insert(first.to_string());
            }
        }
    }
    found
}

/// Module → the modules it imports, over every file of `src/`; with `tests: false`, only
/// what the code itself imports (a unit test at a file's end may use the module's siblings to
/// observe it).
fn graph(tests: bool) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
        let Some(module) = module_of(&relative) else { continue };
        let whole = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = if tests { whole.as_str() } else { whole.split("#[cfg(test)]").next().unwrap_or_default() };
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports(text, "crate::").into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn every_folder_imports_only_the_folders_below_it() {
    let mut upward = Vec::new();
    for (module, imported) in graph(true) {
        let from = layer(&module);
        let allowed = LAYERS.iter().find(|(l, _)| *l == from).map(|(_, a)| *a).unwrap_or_else(|| panic!("{module}: not a layer"));
        for target in imported {
            let to = layer(&target);
            if to != from && !allowed.contains(&to) && !EVERYONES.contains(&to) {
                upward.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layering:\n{}", upward.join("\n"));
}

#[test]
fn no_modules_import_each_other() {
    let graph = graph(false);
    // Tarjan would do; the graph is small enough to ask, for each edge, whether it comes back.
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(module) = stack.pop() {
            if module == to {
                return true;
            }
            if seen.insert(module.clone()) {
                stack.extend(graph.get(&module).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut cycles = Vec::new();
    for (module, imported) in &graph {
        for target in imported {
            if graph.contains_key(target) && reaches(target, module) && !EVERYONES.contains(&layer(module)) {
                cycles.push(format!("{module} -> {target} -> … -> {module}"));
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_generic_layers_know_nothing_of_the_course() {
    let mut found = Vec::new();
    for folder in ["sql", "dbt"] {
        let mut files = Vec::new();
        rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(folder), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default().to_lowercase();
            for (number, line) in text.lines().enumerate() {
                for word in COURSE_WORDS.iter().filter(|w| line.contains(*w)) {
                    found.push(format!("{}:{}: {word}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "course words in the generic layers:\n{}", found.join("\n"));
}

#[test]
fn the_checks_see_what_they_check() {
    // A check that cannot fail is no check: the graph holds the edges the layering is about.
    let code = graph(false);
    assert!(code["orchestrate::engine"].contains("dbt::run"));
    assert!(code["course::lesson"].contains("orchestrate::engine"));
    assert!(code["dbt::run"].contains("sql::warehouse"));
    assert!(code["ui::session"].contains("view::protocol"));
    assert!(!code["sql::dialect"].contains("sql::query") && graph(true)["sql::dialect"].contains("sql::query"));
    assert_eq!(imports("use crate::dbt::run::Dag; crate::error::Error", "crate::"), ["dbt::run", "error"].map(String::from).into());
}
