//! Compiling a model or a data test: its SQL + Jinja rendered with dbt's context (`config`,
//! `ref`, `source`, `this`, `is_incremental`, `var`, `env_var`, `target`, `log`, and
//! [`dbt_context`]: the project's, its packages' and dbt's macros, the `dbt` namespace,
//! `adapter.dispatch`, `return`, `exceptions`; [`introspection`]: what it asks the warehouse;
//! [`datetime`]: `modules.datetime`) into plain SQL plus what the rendering revealed: config,
//! refs, sources.

mod datetime;
mod dbt_context;
mod introspection;
mod python;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object, Value};
use minijinja::ErrorKind;

use crate::dbt::project::{ConfigValues, DataTest, Materialization, ModelConfig, Project, TestConfig, TestKind, Tested};
use crate::dbt::request::{BatchWindow, Vars};
use crate::error::{Error, Location, Result};
use crate::limits::Limit;
use crate::sql::warehouse::RelationName;

pub use introspection::{Asked, Introspection, QueryAnswer};


/// What a model is compiled against.
#[derive(Debug, Clone, Default)]
pub struct CompileContext {
    /// Project vars with `--vars` on top.
    pub vars: Vars,
    /// What `is_incremental()` answers; the runner decides it from the warehouse and the
    /// full-refresh flag.
    pub is_incremental: bool,
    /// What `env_var()` can read (the process environment natively, nothing in the browser).
    pub env: BTreeMap<String, String>,
    /// Set while a microbatch model runs one batch.
    pub batch: Option<BatchContext>,
    /// The models whose compiling led here, each compiling a parent to see whether it is
    /// ephemeral: a ref back to one of them is a cycle, which the DAG reports.
    pub inlining: Vec<String>,
    /// What the warehouse answered to the template's questions (`run_query`, the adapter's
    /// relations and columns); `None` while the graph is parsed, as dbt's `execute` is false.
    pub introspection: Option<Arc<Introspection>>,
}

/// A microbatch model's current batch: every parent with an `event_time` is read through it.
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub window: BatchWindow,
    /// Parent model → its `event_time` column (sources carry theirs in the project).
    pub model_event_times: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct CompiledModel {
    pub name: String,
    pub sql: String,
    pub config: ModelConfig,
    /// What is wrong with the config as written, when something is: dbt checks a model's
    /// config as it runs it, so the model fails then and the rest of the graph still builds.
    pub invalid_config: Option<InvalidConfig>,
    /// The config as written (folders, YAML, `config()`), for selectors like `tag:` and `config.x:`.
    pub values: ConfigValues,
    pub refs: Vec<String>,
    pub sources: Vec<RelationName>,
    pub logs: Vec<String>,
    /// The batch this SQL was compiled for (microbatch models only).
    pub batch: Option<BatchWindow>,
    /// The ephemeral models `sql` reads as CTEs, each with its SQL, in the order they are defined.
    pub ctes: Vec<(String, String)>,
    /// What the template asked of the warehouse that `introspection` did not answer: it is
    /// compiled again once it is answered.
    pub asked: Asked,
}

/// A model's config that dbt would refuse when it runs the model.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidConfig {
    pub message: String,
    /// Only the incremental strategy is wrong, which dbt-duckdb looks up only for an
    /// incremental run: a first run (or a full refresh) builds the table, with the config
    /// without it. Otherwise the config is the defaults' and every run fails.
    pub strategy_only: bool,
}

/// What the template functions saw while rendering.
#[derive(Debug, Default)]
struct Recorder {
    config: ConfigValues,
    refs: Vec<String>,
    sources: Vec<RelationName>,
    logs: Vec<String>,
    /// Bytes the expressions wrote, into the SQL or into what macros and blocks capture.
    written: u64,
    /// The limit the render went over, when it stopped for one.
    over: Option<Limit>,
    /// The macros this rendering can call.
    macros: dbt_context::Macros,
    /// What it asked of the warehouse and was not told.
    asked: Asked,
    /// `statement` blocks by name: their result, if they fetched one (`load_result`).
    statements: BTreeMap<String, Option<Value>>,
}

impl Recorder {
    /// Counts `bytes` more written, failing the render once they are over
    /// [`Limit::RenderedBytes`] (minijinja's fuel counts steps, not what each one writes).
    fn write(&mut self, bytes: usize) -> std::result::Result<(), minijinja::Error> {
        self.written = self.written.saturating_add(bytes as u64);
        if self.written > Limit::RenderedBytes.max() {
            self.over = Some(Limit::RenderedBytes);
            return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "the compiled SQL is too large"));
        }
        Ok(())
    }
}

type Shared = Arc<Mutex<Recorder>>;

fn record<T>(recorder: &Shared, f: impl FnOnce(&mut Recorder) -> T) -> T {
    // A poisoned lock only means an earlier render panicked; its records are still usable.
    let mut guard = recorder.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

/// The compiled SQL as it is written, refusing to grow past [`Limit::RenderedBytes`].
#[derive(Default)]
struct CappedSql {
    bytes: Vec<u8>,
    over: Option<Limit>,
}

impl std::io::Write for CappedSql {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > Limit::RenderedBytes.max() {
            self.over = Some(Limit::RenderedBytes);
            return Err(std::io::Error::other("the compiled SQL is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `this` and what `ref()`/`source()` return: renders as the quoted relation, or as the
/// subquery it is read through (a microbatch run's batch, a test's `where`), with dbt's
/// attributes.
#[derive(Debug)]
struct Relation {
    name: RelationName,
    subquery: Option<String>,
}

impl Relation {
    fn plain(name: RelationName) -> Relation {
        Relation { name, subquery: None }
    }

    /// An ephemeral model, read as the CTE its readers define.
    fn cte(name: RelationName) -> Relation {
        let cte = cte_name(&name.name);
        Relation { name, subquery: Some(cte) }
    }

    /// Read through `(select * from it where filter)`, then `alias`, when there is a filter.
    fn read_where(name: RelationName, filter: Option<String>, alias: &str) -> Relation {
        let subquery = filter.map(|filter| format!("(select * from {} where {filter}){alias}", name.quoted()));
        Relation { name, subquery }
    }

    /// Filtered to `batch` when the relation has an event time column.
    fn in_batch(name: RelationName, batch: Option<&BatchContext>, event_time: Option<&String>) -> Relation {
        let filter = batch.zip(event_time).map(|(batch, column)| batch.window.predicate(column));
        Relation::read_where(name, filter, "")
    }

    /// A test's `where` config, as dbt applies it to the tested relation.
    fn filtered(name: RelationName, where_clause: Option<&String>) -> Relation {
        Relation::read_where(name, where_clause.cloned(), " dbt_subquery")
    }
}

impl Object for Relation {
    // A relation is true, as in dbt (`{% if not relation %}`), whatever it holds.
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" | "identifier" | "table" => Some(Value::from(self.name.name.clone())),
            "schema" => Some(Value::from(self.name.schema.clone())),
            "database" => Some(Value::from(crate::sql::dialect::DEFAULT_CATALOG)),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subquery {
            Some(subquery) => f.write_str(subquery),
            None => f.write_str(&self.name.quoted()),
        }
    }
}

/// A file being rendered: a model's or a test's.
struct Node<'a> {
    /// `model` or `test`, as errors name it.
    kind: &'static str,
    name: &'a str,
    path: &'a str,
    sql: &'a str,
    /// The package it comes from: its macros answer its bare calls first, its vars its `var()`.
    package: Option<&'a str>,
}

/// What a rendering wrote and what its template functions saw.
struct Rendered {
    sql: String,
    recorded: Recorder,
}

/// Renders `node` with dbt's context plus `globals`.
fn render(
    project: &Project,
    node: &Node<'_>,
    ctx: &CompileContext,
    globals: Vec<(&'static str, Value)>,
    ephemeral: &BTreeSet<String>,
) -> Result<Rendered> {
    let recorder: Shared = Arc::default();
    // Macros first: the template functions below win over a macro of the same name.
    let (mut env, prelude) =
        dbt_context::environment(project, node.package, &recorder, ctx.introspection.clone()).map_err(|e| template_error(project, node, e, 0))?;
    env.set_fuel(Some(Limit::TemplateFuel.max()));
    let r = Arc::clone(&recorder);
    env.set_formatter(move |out, state, value| {
        let bytes = value.as_str().map_or_else(|| value.to_string().len(), str::len);
        record(&r, |rec| rec.write(bytes))?;
        minijinja::escape_formatter(out, state, value)
    });
    introspection::add(&mut env, &recorder, ctx.introspection.clone());
    python::add(&mut env);
    env.add_global("modules", datetime::modules());

    let r = Arc::clone(&recorder);
    env.add_function("config", move |kwargs: Kwargs| {
        for key in kwargs.args() {
            let value: Value = kwargs.get(key)?;
            let json = serde_json::to_value(&value).map_err(|e| {
                minijinja::Error::new(ErrorKind::InvalidOperation, format!("config {key}: {e}"))
            })?;
            record(&r, |rec| rec.config.insert(key.to_string(), json));
        }
        Ok(Value::from(""))
    });

    let r = Arc::clone(&recorder);
    let models: Vec<String> =
        project.models.keys().cloned().chain(project.seeds.iter().map(|s| s.name.clone())).collect();
    let batch = ctx.batch.clone();
    let inlined = ephemeral.clone();
    env.add_function("ref", move |args: &[Value]| {
        // ref('model') or ref('package', 'model')
        let name = match args {
            [name] | [_, name] => name.to_string(),
            _ => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "ref() takes a model name",
                ));
            }
        };
        if !models.contains(&name) {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("ref('{name}'): there is no model or seed named `{name}`"),
            ));
        }
        record(&r, |rec| rec.refs.push(name.clone()));
        if inlined.contains(&name) {
            return Ok(Value::from_object(Relation::cte(RelationName::main(&name))));
        }
        let event_time = batch.as_ref().and_then(|b| b.model_event_times.get(&name));
        Ok(Value::from_object(Relation::in_batch(RelationName::main(&name), batch.as_ref(), event_time)))
    });

    let r = Arc::clone(&recorder);
    let sources = project.clone();
    let batch = ctx.batch.clone();
    env.add_function("source", move |source: String, table: String| {
        let declared = sources.source_table(&source, &table);
        let relation = declared.as_ref().map(|(relation, _)| relation.clone()).ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("source('{source}', '{table}'): no such source table is declared in a .yml file"),
            )
        })?;
        record(&r, |rec| rec.sources.push(relation.clone()));
        let event_time = declared.and_then(|(_, event_time)| event_time);
        Ok(Value::from_object(Relation::in_batch(relation, batch.as_ref(), event_time.as_ref())))
    });

    let is_incremental = ctx.is_incremental;
    env.add_function("is_incremental", move || is_incremental);

    let mut vars = ctx.vars.clone();
    if let Some(package) = project.packages.iter().find(|p| Some(p.name.as_str()) == node.package) {
        for (name, value) in &package.vars {
            vars.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    let described = format!("{} {}", node.kind, node.name);
    env.add_function("var", move |name: String, default: Option<Value>| {
        match (vars.get(&name), default) {
            (Some(value), _) => Ok(Value::from(minijinja::value::Serde(value))),
            (None, Some(default)) => Ok(default),
            (None, None) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "required var '{name}' not found: vars supplied to {described} = {}",
                    serde_json::Value::Object(vars.clone())
                ),
            )),
        }
    });

    let env_vars = ctx.env.clone();
    env.add_function("env_var", move |name: String, default: Option<String>| {
        env_vars.get(&name).cloned().or(default).ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("env var required but not provided: '{name}'"),
            )
        })
    });

    let r = Arc::clone(&recorder);
    env.add_function("log", move |message: Value, _info: Option<bool>| {
        record(&r, |rec| rec.logs.push(message.to_string()));
        Ok::<_, minijinja::Error>(Value::from(""))
    });

    env.add_global("target", crate::dbt::project::target(&project.name));
    for (name, value) in globals {
        env.add_global(name, value);
    }

    // The prelude shares line 1 with the node so every later line keeps its number.
    let source = format!("{prelude}{}", python::mutable_literals(node.sql));
    let template = env
        .template_from_named_str(node.path, &source)
        .map_err(|e| template_error(project, node, e, prelude.len()))?;
    let mut sql = CappedSql::default();
    let rendered = template.render_captured_to(minijinja::context! {}, &mut sql);
    let recorded = record(&recorder, std::mem::take);
    // A failure after a question the warehouse has not answered yet may be the empty answer's:
    // the runner answers it and renders again, and a failure then is the template's.
    if rendered.is_err() && ctx.introspection.is_some() && !recorded.asked.queries.is_empty() {
        return Ok(Rendered { sql: String::new(), recorded });
    }
    if let Err(e) = rendered {
        let over = recorded.over.or(sql.over).or((e.kind() == ErrorKind::OutOfFuel).then_some(Limit::TemplateFuel));
        return Err(match over {
            Some(limit) => limit.exceeded(None, format!("{} ({} {})", node.path, node.kind, node.name)),
            None => template_error(project, node, e, prelude.len()),
        });
    }
    let sql = String::from_utf8(sql.bytes).map_err(|e| Error::project(node.path, e.to_string()))?;
    Ok(Rendered { sql, recorded })
}

/// Renders one model.
pub fn compile(project: &Project, model_name: &str, ctx: &CompileContext) -> Result<CompiledModel> {
    let mut compiled = compile_body(project, model_name, ctx)?;
    compiled.sql = with_ctes(&compiled.sql, &compiled.ctes);
    Ok(compiled)
}

/// A model rendered, its refs to ephemeral models naming their CTEs, which are not defined yet.
fn compile_body(project: &Project, model_name: &str, ctx: &CompileContext) -> Result<CompiledModel> {
    let model = project.model(model_name).ok_or_else(|| {
        Error::project(model_name, format!("there is no model named `{model_name}`"))
    })?;
    let node = Node { kind: "model", name: model_name, path: &model.path, sql: &model.sql, package: model.package.as_deref() };
    let this = vec![("this", Value::from_object(Relation::plain(RelationName::main(model_name))))];
    let (Rendered { sql, recorded }, ctes) = render_inlining(project, &node, ctx, this)?;
    let mut values = model.config.clone();
    values.extend(recorded.config);
    let (config, invalid_config) = match ModelConfig::resolve(&values) {
        Ok(config) => (config, None),
        Err(message) => {
            let message = format!("model {model_name}: {message}");
            let mut without_strategy = values.clone();
            without_strategy.remove("incremental_strategy");
            match ModelConfig::resolve(&without_strategy) {
                Ok(config) => (config, Some(InvalidConfig { message, strategy_only: true })),
                Err(_) => {
                    let enabled: ConfigValues = values.get_key_value("enabled").map(|(k, v)| (k.clone(), v.clone())).into_iter().collect();
                    let defaults = ModelConfig::resolve(&enabled).map_err(|_| Error::project(&model.path, message.clone()))?;
                    (defaults, Some(InvalidConfig { message, strategy_only: false }))
                }
            }
        }
    };
    Ok(CompiledModel {
        name: model_name.to_string(),
        sql,
        config,
        invalid_config,
        values,
        refs: recorded.refs,
        sources: recorded.sources,
        logs: recorded.logs,
        batch: ctx.batch.as_ref().map(|b| b.window),
        ctes,
        asked: recorded.asked,
    })
}

fn cte_name(model: &str) -> String {
    format!("__dbt__cte__{model}")
}

/// The ephemeral models among `refs`, and theirs before them, each once, with their SQL: the
/// CTEs a model that reads them defines, as dbt flattens them.
/// What they asked of the warehouse is added to `asked`.
/// Renders `node`; where it refs ephemeral models, renders it again with those refs naming
/// their CTEs, returned beside it (with what they asked of the warehouse recorded as its own).
fn render_inlining(
    project: &Project,
    node: &Node<'_>,
    ctx: &CompileContext,
    globals: Vec<(&'static str, Value)>,
) -> Result<(Rendered, Vec<(String, String)>)> {
    let mut rendered = render(project, node, ctx, globals.clone(), &BTreeSet::new())?;
    let mut parents_asked = Asked::default();
    let ctes = ephemeral_parents(project, node.name, &rendered.recorded.refs, ctx, &mut parents_asked)?;
    if !ctes.is_empty() {
        let inlined = ctes.iter().map(|(name, _)| name.clone()).collect();
        rendered = render(project, node, ctx, globals, &inlined)?;
    }
    rendered.recorded.asked.add(parents_asked);
    Ok((rendered, ctes))
}

fn ephemeral_parents(
    project: &Project,
    model: &str,
    refs: &[String],
    ctx: &CompileContext,
    asked: &mut Asked,
) -> Result<Vec<(String, String)>> {
    let mut ctes: Vec<(String, String)> = Vec::new();
    for parent in refs {
        // A model is ephemeral only where its config says so, in its folder's or YAML config
        // or in its SQL: the others are not compiled again here.
        let Some(declared) = project.model(parent) else { continue };
        let may_be = declared.sql.contains("ephemeral") || declared.config.values().any(|v| v.as_str() == Some("ephemeral"));
        if !may_be || ctx.inlining.iter().any(|m| m == parent) || parent == model || ctes.iter().any(|(n, _)| n == parent) {
            continue;
        }
        let mut inlining = ctx.inlining.clone();
        inlining.push(model.to_string());
        let first_run = CompileContext { is_incremental: false, inlining, ..ctx.clone() };
        let compiled = compile_body(project, parent, &first_run)?;
        if compiled.config.materialized != Materialization::Ephemeral {
            continue;
        }
        asked.add(compiled.asked);
        for cte in compiled.ctes {
            if !ctes.iter().any(|(n, _)| *n == cte.0) {
                ctes.push(cte);
            }
        }
        ctes.push((parent.clone(), compiled.sql));
    }
    Ok(ctes)
}

/// `sql` with `ctes` defined first: inside its own leading `with` (after `recursive`), as dbt
/// injects them, or in a `with` before it; without any, `sql` as it is.
fn with_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let defined = ctes.iter().map(|(name, body)| format!("{} as (\n{}\n)", cte_name(name), body.trim())).collect::<Vec<_>>().join(", ");
    let start = sql.len() - skip_comments(sql).len();
    let after_word = |from: usize, word: &str| -> Option<usize> {
        let rest = sql.get(from..)?;
        let candidate = rest.get(..word.len())?;
        let next = rest[word.len()..].chars().next();
        (candidate.eq_ignore_ascii_case(word) && !next.is_some_and(|c| c.is_alphanumeric() || c == '_')).then_some(from + word.len())
    };
    match after_word(start, "with") {
        Some(end) => {
            let after_space = sql.len() - skip_comments(&sql[end..]).len();
            let end = after_word(after_space, "recursive").unwrap_or(end);
            format!("{} {defined}, {}", &sql[..end], sql[end..].trim_start())
        }
        None => format!("with {defined}\n{sql}"),
    }
}

/// `text` after its leading whitespace and comments.
fn skip_comments(mut text: &str) -> &str {
    loop {
        let trimmed = text.trim_start();
        text = if let Some(rest) = trimmed.strip_prefix("--") {
            rest.find('\n').map_or("", |i| &rest[i..])
        } else if let Some(rest) = trimmed.strip_prefix("/*") {
            rest.find("*/").map_or("", |i| &rest[i + 2..])
        } else {
            return trimmed;
        };
    }
}

/// A data test compiled to the query of its failing rows.
#[derive(Debug, Clone)]
pub struct CompiledTest {
    pub name: String,
    /// The file that declares it.
    pub path: String,
    /// The generic test's name (`relationships`), `None` for a singular test.
    pub test_name: Option<String>,
    pub sql: String,
    pub config: TestConfig,
    /// What the test reads, as graph nodes: models and seeds, then sources.
    pub refs: Vec<String>,
    pub sources: Vec<RelationName>,
    /// What the template asked of the warehouse that the context did not answer: the test is
    /// compiled again against the warehouse when it runs.
    pub asked: Asked,
}

/// Renders one data test: a generic test as a call of its test macro (`test_<name>`) with the
/// tested relation as `model`, the column and the arguments; a singular test as written.
pub fn compile_test(project: &Project, test: &DataTest, ctx: &CompileContext) -> Result<CompiledTest> {
    let fail = |message: String| Error::project(&test.path, format!("test {}: {message}", test.name));
    let written = TestConfig::resolve(&test.config).map_err(fail)?;
    // What a generic test reads first: the tested node.
    let (mut refs, mut sources) = (Vec::new(), Vec::new());
    let (source, globals, test_name) = match &test.kind {
        TestKind::Singular { sql } => (sql.clone(), Vec::new(), None),
        TestKind::Generic(generic) => {
            let relation = match &generic.on {
                Tested::Node(name) => {
                    refs.push(name.clone());
                    RelationName::main(name)
                }
                Tested::Source { source, table } => {
                    let relation = project
                        .source_table(source, table)
                        .map(|(relation, _)| relation)
                        .ok_or_else(|| fail(format!("source `{source}.{table}` is not declared")))?;
                    sources.push(relation.clone());
                    relation
                }
            };
            let call = test_call(project, test.package.as_deref(), &generic.test, generic.column.is_some(), &generic.args).map_err(fail)?;
            let model = Value::from_object(Relation::filtered(relation, written.where_clause.as_ref()));
            let globals = vec![
                ("__model", model),
                ("__column", Value::from(generic.column.clone())),
                ("__args", Value::from(minijinja::value::Serde(&generic.args))),
            ];
            (call, globals, Some(generic.test.clone()))
        }
    };
    let node = Node { kind: "test", name: &test.name, path: &test.path, sql: &source, package: test.package.as_deref() };
    let (Rendered { sql, recorded }, ctes) = render_inlining(project, &node, ctx, globals)?;
    let sql = with_ctes(&sql, &ctes);
    let mut values = test.config.clone();
    values.extend(recorded.config);
    let config = TestConfig::resolve(&values).map_err(fail)?;
    refs.extend(recorded.refs.into_iter().filter(|r| !refs.contains(r)).collect::<Vec<_>>());
    sources.extend(recorded.sources.into_iter().filter(|s| !sources.contains(s)).collect::<Vec<_>>());
    Ok(CompiledTest { name: test.name.clone(), path: test.path.clone(), test_name, sql, config, refs, sources, asked: recorded.asked })
}

/// The Jinja that calls a generic test's macro. An argument written as `ref(...)` or
/// `source(...)` is an expression, as dbt renders it; any other value is passed as data.
fn test_call(
    project: &Project,
    local: Option<&str>,
    test: &str,
    has_column: bool,
    args: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<String, String> {
    let (package, test) = match test.split_once('.') {
        Some((package, test)) => (Some(package), test),
        None => (None, test),
    };
    let macro_name = format!("test_{test}");
    let known = match package {
        Some(package) => dbt_context::package_macro_names(project, package).ok_or_else(|| {
            format!("package `{package}` is not installed (add it under dbt_packages/, as `dbt deps` does; dbt_utils is built in)")
        })?,
        None => {
            let mut known = dbt_context::macro_names_of(project);
            known.extend(local.and_then(|package| dbt_context::package_macro_names(project, package)).unwrap_or_default());
            known
        }
    };
    if !known.contains(&macro_name) {
        let tests: Vec<&str> = known.iter().filter_map(|n| n.strip_prefix("test_")).collect();
        let place = package.map(|p| format!(" of package {p}")).unwrap_or_default();
        return Err(format!("unknown test `{test}`{place} (the tests there are: {})", tests.join(", ")));
    }
    let macro_name = match package {
        Some(package) => format!("{package}.{macro_name}"),
        None => macro_name,
    };
    let mut call = format!("{{{{ {macro_name}(model=__model");
    if has_column {
        call.push_str(", column_name=__column");
    }
    for (key, value) in args {
        let identifier = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(format!("argument `{key}` is not a name a macro argument can have"));
        }
        let expression = value.as_str().map(str::trim).filter(|v| v.starts_with("ref(") || v.starts_with("source("));
        match expression {
            Some(expression) => call.push_str(&format!(", {key}={expression}")),
            None => call.push_str(&format!(", {key}=__args[{key:?}]")),
        }
    }
    call.push_str(") }}");
    Ok(call)
}

fn template_error(project: &Project, node: &Node<'_>, err: minijinja::Error, prefix_len: usize) -> Error {
    let file = err.name().unwrap_or(node.path).to_string();
    let in_node = file == node.path;
    let source = if in_node { Some(node.sql.to_string()) } else { dbt_context::source_of(project, &file) };
    let line = err.line().unwrap_or(1);
    let column = match (err.range(), source) {
        (Some(range), Some(text)) => {
            let offset = if in_node { range.start.saturating_sub(prefix_len) } else { range.start };
            let before = &text[..offset.min(text.len())];
            let before = before.get(before.rfind('\n').map_or(0, |i| i + 1)..).unwrap_or_default();
            before.chars().count() + 1
        }
        _ => 1,
    };
    let message = match err.detail() {
        Some(detail) => detail.to_string(),
        None => err.kind().to_string(),
    };
    Error::Template { node: format!("{} {}", node.kind, node.name), location: Location { file, line, column }, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::project::{Materialization, ProjectFiles};

    /// A project `t` of `files`.
    fn parsed(files: &[(&str, &str)]) -> Project {
        let mut project = ProjectFiles::default();
        project.insert("dbt_project.yml", "name: t\nvars:\n  region: north\n");
        for (path, text) in files {
            project.insert(path, text);
        }
        project.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn project(model: &str) -> Project {
        parsed(&[
            ("models/src.yml", "sources:\n  - name: raw\n    schema: main\n    tables:\n      - name: events\n"),
            ("models/base.sql", "select 1 as id"),
            ("models/m.sql", model),
            ("macros/util.sql", "{% macro double(x) %}({{ x }} * 2){% endmacro %}"),
            ("macros/more.sql", "{% macro twice(x) %}({{ double(x) }} * 2){% endmacro %}"),
        ])
    }

    fn render(model: &str, ctx: &CompileContext) -> Result<CompiledModel> {
        let project = project(model);
        let ctx = CompileContext { vars: project.vars.clone(), ..ctx.clone() };
        compile(&project, "m", &ctx)
    }

    #[test]
    fn renders_dbt_context() {
        let compiled = render(
            "{{ config(materialized='incremental', unique_key=['a', 'b']) }}select {{ double('id') }}, '{{ var('region') }}' from {{ ref('base') }} join {{ source('raw', 'events') }}{% if is_incremental() %} where x > (select max(x) from {{ this }}){% endif %}",
            &CompileContext { is_incremental: true, ..Default::default() },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            compiled.sql,
            "select (id * 2), 'north' from \"main\".\"base\" join \"main\".\"events\" where x > (select max(x) from \"main\".\"m\")"
        );
        assert_eq!(compiled.config.materialized, Materialization::Incremental);
        assert_eq!(compiled.config.unique_key, vec!["a", "b"]);
        assert_eq!(compiled.refs, vec!["base"]);
    }

    #[test]
    fn a_changed_macro_is_compiled_again() {
        let model = ("models/m.sql", "select {{ double('id') }}");
        let sql = |macro_text: &str| {
            let project = parsed(&[model, ("macros/util.sql", macro_text)]);
            compile(&project, "m", &CompileContext::default()).map(|c| c.sql).unwrap_or_else(|e| panic!("{e}"))
        };
        let first = "{% macro double(x) %}({{ x }} * 2){% endmacro %}";
        assert_eq!(sql(first), "select (id * 2)");
        assert_eq!(sql("{% macro double(x) %}({{ x }} + {{ x }}){% endmacro %}"), "select (id + id)");
        assert_eq!(sql(first), "select (id * 2)", "compiled again, or kept: the same text, the same macro");
        let broken = parsed(&[model, ("macros/util.sql", "{% macro double(x) %}{{ x }")]);
        assert!(compile(&broken, "m", &CompileContext::default()).is_err(), "a macro that does not parse is no one's cache");
        assert_eq!(sql(first), "select (id * 2)");
    }

    #[test]
    fn surrogate_key_matches_dbt_utils() {
        let compiled = render(
            "select {{ dbt_utils.generate_surrogate_key(['a', 'b']) }} as id",
            &CompileContext::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            compiled.sql,
            "select md5(cast(coalesce(cast(a as VARCHAR), '_dbt_utils_surrogate_key_null_') || '-' || coalesce(cast(b as VARCHAR), '_dbt_utils_surrogate_key_null_') as VARCHAR)) as id"
        );
    }

    /// dbt's own cast and safe_cast tests write their types through `api.Column`.
    #[test]
    fn api_column_names_types_as_dbt_does() {
        let compiled = render(
            "select {{ api.Column.translate_type('string') }}, {{ api.Column.translate_type('integer') }}, \
             {{ api.Column.translate_type('date') }}, {{ api.Column.string_type(10) }}, \
             {{ api.Column.numeric_type('numeric', 28, 6) }}, {{ api.Column.numeric_type('numeric', none, none) }}",
            &CompileContext::default(),
        );
        assert_eq!(
            compiled.map(|c| c.sql).unwrap_or_else(|e| panic!("{e}")),
            "select TEXT, INT, date, character varying(10), numeric(28,6), numeric"
        );
    }

    #[test]
    fn errors_say_model_line_and_column() {
        let err = render("select 1\nfrom {{ ref('nope') }}", &CompileContext::default())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("models/m.sql:2:9: ref('nope'): there is no model or seed named `nope` (model m)")
        );
        let err = render("select {{ var('min_date') }}", &CompileContext::default())
            .err()
            .map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("required var 'min_date' not found")), "{err:?}");
        let err = render("select {% if %}", &CompileContext::default()).err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.starts_with("models/m.sql:1:")), "{err:?}");
    }

    #[test]
    fn dbts_context_reaches_macros_by_name() {
        let compiled = render(
            "{% set parts = dbt.split_part('s', \"','\", 2) %}select {{ dbt.type_string() }}, {{ adapter.dispatch('concat', 'dbt')(['a', 'b']) }}, {{ twice('x') }}, {{ parts }}, {{ fromjson('[1, 2]') | length }}, '{{ target.type }}'",
            &CompileContext::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.sql, "select TEXT, a || b, ((x * 2) * 2), \n    string_split(s, ',')[ 2 ]\n, 2, 'duckdb'");
        let error = render("select {{ exceptions.raise_compiler_error('no way') }}", &CompileContext::default()).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("models/m.sql:1:21: no way (model m)"));
        let day = render("select '{{ modules.datetime.date(2023, 3, 4).strftime('%Y%m%d') }}'", &CompileContext::default());
        assert_eq!(day.map(|c| c.sql).ok().as_deref(), Some("select '20230304'"));
    }

    #[test]
    fn a_projects_dispatch_override_wins_over_dbts() {
        let project = parsed(&[
            ("models/m.sql", "select {{ dbt.type_string() }} as t, {{ listed() }} as n"),
            ("macros/types.sql", "{% macro default__type_string() %}varchar{% endmacro %}\n{% macro listed() %}{% do return([1, 2] | length) %}ignored{% endmacro %}"),
        ]);
        let compiled = compile(&project, "m", &CompileContext::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.sql, "select varchar as t, 2 as n");
    }

    #[test]
    fn a_packages_macros_are_called_through_its_name_and_dispatched_in_its_search_order() {
        let files = |project_file: &'static str| {
            parsed(&[
                ("dbt_project.yml", project_file),
                ("dbt_packages/money/dbt_project.yml", "name: money\n"),
                (
                    "dbt_packages/money/macros/units.sql",
                    "{% macro units(x) %}{{ return(adapter.dispatch('units', 'money')(x)) }}{% endmacro %}{% macro default__units(x) %}{{ x }} / 100{% endmacro %}",
                ),
                ("macros/units.sql", "{% macro default__units(x) %}{{ x }} / 1000{% endmacro %}"),
                ("models/m.sql", "select {{ money.units('a') }} as u, {{ t.default__units('b') }} as v"),
            ])
        };
        let sql = |project: &Project| compile(project, "m", &CompileContext::default()).map(|c| c.sql).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sql(&files("name: t\n")), "select a / 1000 as u, b / 1000 as v", "the project's override comes first");
        let own_first = files("name: t\ndispatch:\n  - macro_namespace: money\n    search_order: [money, t]\n");
        assert_eq!(sql(&own_first), "select a / 100 as u, b / 1000 as v");
    }

    #[test]
    fn generic_tests_call_their_macro_as_dbt_does() {
        let project = parsed(&[
            ("models/orders.sql", "select 1 as id, 2 as customer_id"),
            ("models/customers.sql", "select 2 as id"),
            (
                "models/schema.yml",
                "models:\n  - name: orders\n    columns:\n      - name: customer_id\n        data_tests:\n          - relationships:\n              arguments: {to: ref('customers'), field: id}\n              config: {where: \"id > 0\", severity: warn}\n          - is_even\n",
            ),
            ("tests/generic/is_even.sql", "{% test is_even(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} % 2 = 1\n{% endtest %}"),
        ]);
        let compiled = |index: usize| compile_test(&project, &project.tests[index], &CompileContext::default()).unwrap_or_else(|e| panic!("{e}"));
        let relationships = compiled(0);
        assert_eq!(relationships.name, "relationships_orders_customer_id__id__ref_customers_");
        assert_eq!(relationships.refs, ["orders", "customers"]);
        assert_eq!(relationships.config.severity, crate::dbt::project::Severity::Warn);
        let sql: Vec<&str> = relationships.sql.split_whitespace().collect();
        assert_eq!(
            sql.join(" "),
            "with child as ( select customer_id as from_field from (select * from \"main\".\"orders\" where id > 0) dbt_subquery where customer_id is not null ), parent as ( select id as to_field from \"main\".\"customers\" ) select from_field from child left join parent on child.from_field = parent.to_field where parent.to_field is null"
        );
        assert_eq!(compiled(1).sql.trim(), "select * from \"main\".\"orders\" where customer_id % 2 = 1");
    }

    #[test]
    fn an_unknown_test_says_which_and_where() {
        let project = parsed(&[
            ("models/orders.sql", "select 1 as id"),
            ("models/schema.yml", "models:\n  - name: orders\n    data_tests: [is_odd, dbt_expectations.expect_table_row_count_to_equal, dbt_utils.is_odd]\n"),
        ]);
        let error = |index: usize| compile_test(&project, &project.tests[index], &CompileContext::default()).err().map(|e| e.to_string());
        assert_eq!(
            error(0).as_deref(),
            Some("models/schema.yml: test is_odd_orders_: unknown test `is_odd` (the tests there are: accepted_values, not_null, relationships, unique)")
        );
        assert_eq!(
            error(1).as_deref(),
            Some(
                "models/schema.yml: test dbt_expectations_expect_table_row_count_to_equal_orders_: package `dbt_expectations` is not installed \
                 (add it under dbt_packages/, as `dbt deps` does; dbt_utils is built in)"
            )
        );
        assert_eq!(
            error(2).as_deref(),
            Some(
                "models/schema.yml: test dbt_utils_is_odd_orders_: unknown test `is_odd` of package dbt_utils (the tests there are: \
                 accepted_range, at_least_one, equal_rowcount, expression_is_true, not_accepted_values, not_constant, not_empty_string, \
                 unique_combination_of_columns)"
            )
        );
    }

    #[test]
    fn runaway_templates_stop_with_a_limit_naming_the_model() {
        let too_expensive = |model: &str, limit: Limit| {
            let error = render(model, &CompileContext::default()).err();
            assert_eq!(error, Some(limit.exceeded(None, "models/m.sql (model m)")), "{model}");
        };
        too_expensive("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}select 1", Limit::TemplateFuel);
        too_expensive("select '{{ 'x' * 5000000 }}'", Limit::RenderedBytes);
        too_expensive("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", Limit::RenderedBytes);
        // What a macro writes is captured before it reaches the SQL; it is counted all the same.
        too_expensive(
            "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}select '{{ m() }}'",
            Limit::RenderedBytes,
        );
        too_expensive(&format!("{{% for i in range(100000) %}}{}{{% endfor %}}", "x".repeat(100)), Limit::RenderedBytes);
        let fits = format!("select '{}' as x", "y".repeat(1_000_000));
        let compiled = render(&fits, &CompileContext::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.sql, fits);
    }
}
