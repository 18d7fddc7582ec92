//! dbt's macro context: the project's macros and dbt's own (its generic tests and global
//! cross-database macros, as dbt-duckdb resolves them) callable by name from every template,
//! the `dbt` namespace, `adapter.dispatch`, `return`, `exceptions`, `fromjson` and `tojson`.
//!
//! Every macro file is imported into the rendering (minijinja only calls a macro within the
//! render that defined it) and its macros are bound by name; each name is a global that
//! resolves the macro when called. Macros are renamed `macro__name` in their files, so a call
//! to a macro of the same file goes through that global too: `return()` and dbt's override
//! order then hold for every call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Object, Value};
use minijinja::{Environment, ErrorKind, State};

use super::introspection::{self, Introspection};
use super::{Relation, Shared, record};
use crate::dbt::project::{MacroFile, Project, macro_names};

/// What a macro's name starts with in its renamed file (never `_`: minijinja does not export
/// such names).
const RENAMED: &str = "macro__";

/// The deepest macro calls nest (a macro calling itself without end stops here).
const MAX_DEPTH: usize = 64;

/// dbt's own macros, in the files Backfill ships, named as errors cite them.
const DBT_FILES: [(&str, &str); 2] = [
    ("dbt/generic_tests.sql", include_str!("dbt/generic_tests.sql")),
    ("dbt/cross_db.sql", include_str!("dbt/cross_db.sql")),
];

/// Whose dbt's own macros are, as `adapter.dispatch`'s `macro_namespace` names them.
const DBT: &str = "dbt";

/// The macros bound in one rendering, by whose they are: the project's (by its name), each
/// package's, and dbt's.
#[derive(Debug, Default)]
pub(super) struct Macros {
    owners: BTreeMap<String, BTreeMap<String, Value>>,
    /// The project's name.
    root: String,
    /// The package of the node rendered, whose macros its bare calls find first (as dbt's
    /// local namespace).
    local: Option<String>,
    /// dbt_project.yml's `dispatch:` search orders.
    search_orders: BTreeMap<String, Vec<String>>,
    /// One slot per macro call in progress: what its `return()` handed back.
    returns: Vec<Option<Value>>,
}

impl Macros {
    /// `adapter.dispatch(name, namespace)` for the duckdb adapter: `duckdb__name`, then
    /// `default__name`, in each package of the namespace's search order: `dispatch:`'s, else
    /// the project, then the namespace's own package (dbt's for none). dbt's own macros are
    /// kept resolved for duckdb, so they also answer by the plain name.
    fn dispatch(&self, name: &str, namespace: Option<&str>) -> Option<Value> {
        let prefixed = [format!("duckdb__{name}"), format!("default__{name}")];
        let order = self.search_order(namespace);
        let found = order.iter().find_map(|owner| {
            let macros = self.owners.get(*owner)?;
            prefixed.iter().find_map(|p| macros.get(p))
        });
        let plain = || order.contains(&DBT).then(|| self.owners.get(DBT)?.get(name)).flatten();
        found.or_else(plain).cloned()
    }

    fn search_order<'a>(&'a self, namespace: Option<&'a str>) -> Vec<&'a str> {
        match namespace.and_then(|ns| self.search_orders.get(ns)) {
            Some(order) => order.iter().map(String::as_str).collect(),
            None => vec![self.root.as_str(), namespace.unwrap_or(DBT)],
        }
    }

    /// A bare name: the project's macro, else dbt's (dispatched).
    fn resolve(&self, name: &str) -> Option<Value> {
        let local = self.local.as_deref().and_then(|package| self.owned(package, name));
        local.or_else(|| self.owned(&self.root, name)).or_else(|| self.dispatch(name, None))
    }

    /// `owner.name`: that package's macro `name`.
    fn owned(&self, owner: &str, name: &str) -> Option<Value> {
        self.owners.get(owner)?.get(name).cloned()
    }
}

/// A macro file's text as minijinja reads it: `{% test x(...) %}` is dbt's generic test block
/// (a macro named `test_x`), every macro is renamed `macro__name` (see the module comment), and
/// lists and dicts set from literals change in place (`python`). Lines keep their numbers.
pub fn jinja_source(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        let (before, tag) = rest.split_at(start + 2);
        out.push_str(before);
        let trimmed = tag.trim_start_matches(['-', '+']);
        let (marks, body) = tag.split_at(tag.len() - trimmed.len());
        let word = body.trim_start();
        let space = &body[..body.len() - word.len()];
        let renamed = [("macro ", "macro macro__"), ("macro\t", "macro macro__"), ("test ", "macro macro__test_"), ("test\t", "macro macro__test_"), ("endtest", "endmacro")]
            .iter()
            .find_map(|(from, to)| word.strip_prefix(from).map(|after| (*to, after)));
        match renamed {
            Some((to, after)) => {
                out.push_str(marks);
                out.push_str(space);
                out.push_str(to);
                rest = if to.ends_with('_') { after.trim_start_matches([' ', '\t']) } else { after };
            }
            None => rest = tag,
        }
    }
    out.push_str(rest);
    super::python::mutable_literals(&out)
}

/// dbt's own macro files with their text as rendered: read once, as every rendering imports them.
fn dbt_files() -> &'static [(MacroFile, String)] {
    static FILES: OnceLock<Vec<(MacroFile, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        DBT_FILES
            .iter()
            .map(|(path, source)| {
                let file = MacroFile { path: path.to_string(), source: source.to_string(), names: macro_names(source) };
                (file, jinja_source(source))
            })
            .collect()
    })
}

/// The name of every macro a template can call by its bare name: the project's and dbt's.
pub(super) fn macro_names_of(project: &Project) -> BTreeSet<String> {
    let dbt = dbt_files().iter().map(|(file, _)| file);
    project.macros.iter().chain(dbt).flat_map(|f| f.names.iter().cloned()).collect()
}

/// The names of a package's macros, if the project has the package.
pub(super) fn package_macro_names(project: &Project, package: &str) -> Option<BTreeSet<String>> {
    let package = project.packages.iter().find(|p| p.name == package)?;
    Some(package.macros.iter().flat_map(|f| f.names.iter().cloned()).collect())
}

/// A macro file's text as it is rendered, for placing an error in it.
pub(super) fn source_of(project: &Project, path: &str) -> Option<String> {
    let packaged = project.packages.iter().flat_map(|p| &p.macros);
    let own = project.macros.iter().chain(packaged).find(|f| f.path == path).map(|f| jinja_source(&f.source));
    own.or_else(|| dbt_files().iter().find(|(file, _)| file.path == path).map(|(_, jinja)| jinja.clone()))
}

/// The macro files of a project, compiled: what every rendering imports. Parsing them was most
/// of a rendering's time, and a partition run renders every model of the project (its graph),
/// so they are compiled once per set of files and each rendering starts from a clone (the
/// compiled templates are shared, not copied).
struct Compiled {
    env: Environment<'static>,
    /// Imports every file as `__module<index>`, then binds them: opens each rendering.
    prelude: String,
    /// Each file's owner and the names of its macros, in import order.
    files: Vec<(String, Vec<String>)>,
}

/// The projects whose macros were compiled last: a comparison renders a few projects in turn.
const KEEP_COMPILED: usize = 4;

/// Each macro file's owner, path and text: what a compiled set is kept under.
type MacroTexts = Vec<(String, String, String)>;

fn compiled(project: &Project) -> Result<Arc<Compiled>, minijinja::Error> {
    static CACHE: Mutex<Vec<(MacroTexts, Arc<Compiled>)>> = Mutex::new(Vec::new());
    let own = project.macros.iter().map(|f| (project.name.as_str(), f));
    let packaged = project.packages.iter().flat_map(|p| p.macros.iter().map(|f| (p.name.as_str(), f)));
    let files: Vec<(&str, &MacroFile)> = own.chain(packaged).collect();
    let same = |texts: &MacroTexts| {
        texts.len() == files.len() && texts.iter().zip(&files).all(|((o, p, s), (owner, f))| o == owner && *p == f.path && *s == f.source)
    };
    // A poisoned lock only means a rendering panicked while it held it; the cache is whole.
    let found = CACHE.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(texts, _)| same(texts)).map(|(_, c)| Arc::clone(c));
    if let Some(compiled) = found {
        return Ok(compiled);
    }
    let texts: MacroTexts = files.iter().map(|(owner, f)| (owner.to_string(), f.path.clone(), f.source.clone())).collect();
    let mut env = Environment::new();
    env.set_debug(true);
    // SQL is never escaped, whatever the file is called (minijinja escapes a .yml one as JSON).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let mut prelude = String::new();
    let mut modules = Vec::new();
    let mut owners = Vec::new();
    let dbt = dbt_files().iter().map(|(f, jinja)| (DBT, f, jinja.clone()));
    for (index, (owner, file, jinja)) in files.into_iter().map(|(owner, f)| (owner, f, jinja_source(&f.source))).chain(dbt).enumerate() {
        env.add_template_owned(file.path.clone(), jinja)?;
        prelude.push_str(&format!("{{% import {:?} as __module{index} %}}", file.path));
        modules.push(format!("[{owner:?}, __module{index}]"));
        owners.push((owner.to_string(), file.names.clone()));
    }
    prelude.push_str(&format!("{{{{ __bind([{}]) }}}}", modules.join(", ")));
    let compiled = Arc::new(Compiled { env, prelude, files: owners });
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() == KEEP_COMPILED {
        cache.remove(0);
    }
    cache.push((texts, Arc::clone(&compiled)));
    Ok(compiled)
}

/// An environment with every macro file and the dbt context; returns it with the template
/// text that must open each rendering (imports, then the binding, on one line).
pub(super) fn environment(
    project: &Project,
    local: Option<&str>,
    recorder: &Shared,
    known: Option<Arc<Introspection>>,
) -> Result<(Environment<'static>, String), minijinja::Error> {
    let compiled = compiled(project)?;
    let mut env = compiled.env.clone();
    for (owner, names) in &compiled.files {
        // Only the project's, dbt's and a package node's own package's macros are callable by
        // their bare name; a package's are otherwise called as `package.name`.
        if *owner == project.name || owner == DBT || Some(owner.as_str()) == local {
            for name in names {
                env.add_global(name.clone(), Value::from_object(Call::Bare(name.clone(), Arc::clone(recorder))));
            }
        }
    }
    for owner in project.packages.iter().map(|p| &p.name).chain([&project.name]) {
        env.add_global(owner.clone(), Value::from_object(Namespace::Package(owner.clone(), Arc::clone(recorder))));
    }

    let r = Arc::clone(recorder);
    let (root, search_orders, local) = (project.name.clone(), project.dispatch.clone(), local.map(str::to_string));
    env.add_function("__bind", move |modules: Vec<Vec<Value>>| {
        let mut owners: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for pair in modules {
            let [owner, module] = pair.as_slice() else { continue };
            let macros = owners.entry(owner.to_string()).or_default();
            for key in module.try_iter()? {
                let Some(renamed) = key.as_str() else { continue };
                if let Some(name) = renamed.strip_prefix(RENAMED) {
                    macros.insert(name.to_string(), module.get_attr(renamed)?);
                }
            }
        }
        let macros = Macros { owners, root: root.clone(), local: local.clone(), search_orders: search_orders.clone(), returns: Vec::new() };
        record(&r, |rec| rec.macros = macros);
        Ok::<_, minijinja::Error>(Value::from(""))
    });

    let r = Arc::clone(recorder);
    // As in dbt, `return()` ends the macro: its value is kept in the call's slot and the
    // rendering stops with an error that the call (`call_macro`) turns back into the value.
    env.add_function("return", move |value: Value| {
        record(&r, |rec| match rec.macros.returns.last_mut() {
            Some(slot) => {
                *slot = Some(value);
                Err::<Value, _>(minijinja::Error::new(ErrorKind::InvalidOperation, "return() outside the macro that called it"))
            }
            None => Err(minijinja::Error::new(ErrorKind::InvalidOperation, "return() is only allowed inside a macro")),
        })
    });
    env.add_function("fromjson", |text: String, default: Option<Value>| {
        match (serde_json::from_str::<serde_json::Value>(&text), default) {
            (Ok(value), _) => Ok(Value::from(minijinja::value::Serde(value))),
            (Err(_), Some(default)) => Ok(default),
            (Err(e), None) => Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))),
        }
    });
    env.add_function("tojson", |value: Value| {
        serde_json::to_string(&value)
            .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))
    });
    env.add_global("dbt", Value::from_object(Namespace::Dbt(Arc::clone(recorder))));
    env.add_global("adapter", Value::from_object(Adapter(Arc::clone(recorder), known)));
    env.add_global("exceptions", Value::from_object(Exceptions(Arc::clone(recorder))));
    env.add_global("api", minijinja::context! { Column => Value::from_object(ColumnTypes), Relation => Value::from_object(Relations) });
    Ok((env, compiled.prelude.clone()))
}

/// A macro called by name: a bare name resolves as a global does in dbt, a dispatched one is
/// already resolved.
#[derive(Debug)]
enum Call {
    Bare(String, Shared),
    Dispatched(String, Value, Shared),
}

impl Object for Call {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, minijinja::Error> {
        match &**self {
            Call::Bare(name, recorder) => {
                let found = record(recorder, |rec| rec.macros.resolve(name));
                let target = found.ok_or_else(|| unknown(name))?;
                call_macro(recorder, &target, state, args)
            }
            Call::Dispatched(_, target, recorder) => call_macro(recorder, target, state, args),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &**self {
            Call::Bare(name, _) | Call::Dispatched(name, _, _) => write!(f, "<macro {name}>"),
        }
    }
}

fn unknown(name: &str) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::UnknownFunction, format!("there is no macro named `{name}`"))
}

/// Calls a macro with a slot for its `return()`: what it returned (which stopped it), else
/// what it wrote.
fn call_macro(recorder: &Shared, target: &Value, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, minijinja::Error> {
    let depth = record(recorder, |rec| {
        rec.macros.returns.push(None);
        rec.macros.returns.len()
    });
    let result = if depth > MAX_DEPTH {
        Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("macros nest deeper than {MAX_DEPTH} calls")))
    } else {
        target.call(state, args)
    };
    match record(recorder, |rec| rec.macros.returns.pop().flatten()) {
        Some(value) => Ok(value),
        None => result,
    }
}

/// A namespace of macros: `dbt.x(...)` is dbt's macro `x` as dispatched for duckdb,
/// `package.x(...)` that package's (or the project's) macro `x`.
#[derive(Debug)]
enum Namespace {
    Dbt(Shared),
    Package(String, Shared),
}

impl Object for Namespace {
    fn call_method(self: &Arc<Self>, state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, minijinja::Error> {
        let (found, recorder, owner) = match &**self {
            Namespace::Dbt(recorder) => (record(recorder, |rec| rec.macros.dispatch(method, Some(DBT))), recorder, DBT),
            Namespace::Package(owner, recorder) => (record(recorder, |rec| rec.macros.owned(owner, method)), recorder, owner.as_str()),
        };
        let target = found.ok_or_else(|| unknown(&format!("{owner}.{method}")))?;
        call_macro(recorder, &target, state, args)
    }
}

/// `adapter`: `dispatch(name, macro_namespace)`, which returns the macro to call; `quote`; and
/// what it knows of the warehouse, `get_columns_in_relation` and `get_relation`.
#[derive(Debug)]
struct Adapter(Shared, Option<Arc<Introspection>>);

impl Object for Adapter {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, minijinja::Error> {
        let known = self.1.as_deref();
        match (method, args) {
            ("dispatch", _) => dispatch(&self.0, args),
            ("quote", [name]) => Ok(Value::from(introspection::quote(&name.to_string()))),
            ("get_columns_in_relation", [relation]) => introspection::columns_in(&self.0, known, relation),
            ("get_relation", _) => introspection::relation(&self.0, known, args),
            _ => {
                let available = "dispatch, quote, get_columns_in_relation, get_relation";
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("adapter.{method} is not available here ({available} are)")))
            }
        }
    }
}

/// `adapter.dispatch(macro_name, macro_namespace=None)`: the macro to call.
fn dispatch(recorder: &Shared, args: &[Value]) -> Result<Value, minijinja::Error> {
    let (positional, kwargs): (&[Value], minijinja::value::Kwargs) = minijinja::value::from_args(args)?;
    let named = |index: usize, key: &str| -> Result<Option<String>, minijinja::Error> {
        let keyword: Option<String> = kwargs.get(key)?;
        Ok(keyword.or_else(|| positional.get(index).filter(|v| !v.is_none()).map(Value::to_string)))
    };
    let (name, namespace) = (named(0, "macro_name")?, named(1, "macro_namespace")?);
    // dbt's older `packages=` list is read and left: `macro_namespace` decides.
    let _: Option<Value> = kwargs.get("packages")?;
    kwargs.assert_all_used()?;
    let name = name.ok_or_else(|| minijinja::Error::new(ErrorKind::MissingArgument, "adapter.dispatch takes a macro name"))?;
    let (found, order) = record(recorder, |rec| {
        let order = rec.macros.search_order(namespace.as_deref()).join(", ");
        (rec.macros.dispatch(&name, namespace.as_deref()), order)
    });
    let target = found.ok_or_else(|| {
        minijinja::Error::new(ErrorKind::UnknownFunction, format!("adapter.dispatch: no macro duckdb__{name} or default__{name} in {order}"))
    })?;
    Ok(Value::from_object(Call::Dispatched(name, target, Arc::clone(recorder))))
}

/// `exceptions.raise_compiler_error(message)` stops the compile with the message;
/// `exceptions.warn(message)` logs it.
#[derive(Debug)]
struct Exceptions(Shared);

impl Object for Exceptions {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, minijinja::Error> {
        let message = args.first().map(Value::to_string).unwrap_or_default();
        match method {
            "raise_compiler_error" => Err(minijinja::Error::new(ErrorKind::InvalidOperation, message)),
            "warn" => {
                record(&self.0, |rec| rec.logs.push(format!("warning: {message}")));
                Ok(Value::from(""))
            }
            other => Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("exceptions.{other} is not available"))),
        }
    }
}

/// `api.Relation.create(database, schema, identifier)`: a relation by its name.
#[derive(Debug)]
struct Relations;

impl Object for Relations {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, minijinja::Error> {
        if method != "create" {
            return Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("api.Relation.{method} is not available (create is)")));
        }
        let (_, kwargs): (&[Value], minijinja::value::Kwargs) = minijinja::value::from_args(args)?;
        let schema: Option<String> = kwargs.get("schema")?;
        let identifier: String = kwargs.get("identifier")?;
        let _: Option<Value> = kwargs.get("database")?;
        let _: Option<Value> = kwargs.get("type")?;
        kwargs.assert_all_used()?;
        let name = crate::sql::warehouse::RelationName::new(schema.as_deref().unwrap_or("main"), &identifier);
        Ok(Value::from_object(Relation::plain(name)))
    }
}

/// `api.Column`'s type helpers, as dbt-adapters' base `Column` (which dbt-duckdb keeps) answers
/// them: `translate_type`, `string_type`, `numeric_type`.
#[derive(Debug)]
struct ColumnTypes;

impl Object for ColumnTypes {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, minijinja::Error> {
        let arg = |i: usize| args.get(i).filter(|v| !v.is_none() && !v.is_undefined()).map(Value::to_string);
        let text = match method {
            "translate_type" => {
                let dtype = arg(0).unwrap_or_default();
                match dtype.to_ascii_uppercase().as_str() {
                    "STRING" => "TEXT".to_string(),
                    "INTEGER" => "INT".to_string(),
                    upper @ ("TIMESTAMP" | "FLOAT" | "BOOLEAN" | "BIGINT") => upper.to_string(),
                    _ => dtype,
                }
            }
            "string_type" => format!("character varying({})", arg(0).unwrap_or_default()),
            "numeric_type" => match (arg(0).unwrap_or_default(), arg(1), arg(2)) {
                (dtype, Some(precision), Some(scale)) => format!("{dtype}({precision},{scale})"),
                (dtype, _, _) => dtype,
            },
            other => return Err(minijinja::Error::new(ErrorKind::InvalidOperation, format!("api.Column.{other} is not available"))),
        };
        Ok(Value::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::jinja_source;

    #[test]
    fn test_blocks_and_macros_are_renamed_on_their_lines() {
        let source = "{% test is_even(model, column_name) %}\nselect 1\n{% endtest %}\n{%- macro  m(x) -%}{{ x }}{%- endmacro %}";
        assert_eq!(
            jinja_source(source),
            "{% macro macro__test_is_even(model, column_name) %}\nselect 1\n{% endmacro %}\n{%- macro macro__m(x) -%}{{ x }}{%- endmacro %}"
        );
    }
}
