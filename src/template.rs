//! Compiling a model: its SQL + Jinja rendered with dbt's context (`config`, `ref`, `source`,
//! `this`, `is_incremental`, `var`, `env_var`, `dbt_utils.generate_surrogate_key`, project
//! macros, `log`) into plain SQL plus what the rendering revealed: config, refs, sources.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Environment, ErrorKind, State};

use crate::error::{Error, Location, Result};
use crate::limits::Limit;
use crate::project::{ConfigValues, ModelConfig, Project};
use crate::run::BatchWindow;
use crate::warehouse::RelationName;

pub type Vars = serde_json::Map<String, serde_json::Value>;

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
    /// The config as written (folders, YAML, `config()`), for selectors like `tag:` and `config.x:`.
    pub values: ConfigValues,
    pub refs: Vec<String>,
    pub sources: Vec<RelationName>,
    pub logs: Vec<String>,
    /// The batch this SQL was compiled for (microbatch models only).
    pub batch: Option<BatchWindow>,
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

/// `this` and what `ref()`/`source()` return: renders as the quoted relation (in a microbatch
/// run, as dbt's event-time-filtered subquery), with dbt's attributes.
#[derive(Debug)]
struct Relation(RelationName, Option<String>);

impl Relation {
    fn plain(name: RelationName) -> Relation {
        Relation(name, None)
    }

    /// Filtered to `batch` when the relation has an event time column.
    fn in_batch(name: RelationName, batch: Option<&BatchContext>, event_time: Option<&String>) -> Relation {
        let filter = batch.zip(event_time).map(|(batch, column)| batch.window.predicate(column));
        Relation(name, filter)
    }
}

impl Object for Relation {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" | "identifier" | "table" => Some(Value::from(self.0.name.clone())),
            "schema" => Some(Value::from(self.0.schema.clone())),
            "database" => Some(Value::from(crate::dialect::DEFAULT_CATALOG)),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.1 {
            Some(filter) => write!(f, "(select * from {} where {filter})", self.0.quoted()),
            None => f.write_str(&self.0.quoted()),
        }
    }
}

/// The `dbt_utils` package namespace; only the macro the lesson uses.
#[derive(Debug)]
struct DbtUtils;

impl Object for DbtUtils {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        match method {
            "generate_surrogate_key" => {
                let [fields] = args else {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "generate_surrogate_key takes one argument: a list of column names",
                    ));
                };
                let fields: Vec<String> = fields
                    .try_iter()?
                    .map(|f| f.to_string())
                    .collect();
                Ok(Value::from_safe_string(surrogate_key_sql(&fields)))
            }
            other => Err(minijinja::Error::new(
                ErrorKind::UnknownMethod,
                format!("dbt_utils.{other} is not available (only generate_surrogate_key is)"),
            )),
        }
    }
}

/// dbt_utils' surrogate key: each field cast to text, nulls replaced by a marker, joined by
/// '-', hashed with md5.
pub fn surrogate_key_sql(fields: &[String]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("coalesce(cast({f} as VARCHAR), '_dbt_utils_surrogate_key_null_')"))
        .collect();
    format!("md5(cast({} as VARCHAR))", parts.join(" || '-' || "))
}

/// Renders one model.
pub fn compile(project: &Project, model_name: &str, ctx: &CompileContext) -> Result<CompiledModel> {
    let model = project.model(model_name).ok_or_else(|| {
        Error::project(model_name, format!("there is no model named `{model_name}`"))
    })?;
    let recorder: Shared = Arc::default();
    let mut env = Environment::new();
    env.set_debug(true);
    env.set_fuel(Some(Limit::TemplateFuel.max()));
    let r = Arc::clone(&recorder);
    env.set_formatter(move |out, state, value| {
        let bytes = value.as_str().map_or_else(|| value.to_string().len(), str::len);
        record(&r, |rec| rec.write(bytes))?;
        minijinja::escape_formatter(out, state, value)
    });

    let template_error = |e: minijinja::Error, source_prefix: usize| {
        template_error(project, model_name, &model.path, e, source_prefix)
    };

    let mut imports = String::new();
    for file in &project.macros {
        env.add_template_owned(file.path.clone(), file.source.clone())
            .map_err(|e| template_error(e, 0))?;
        if !file.names.is_empty() {
            imports.push_str(&format!(
                "{{% from {:?} import {} %}}",
                file.path,
                file.names.join(", ")
            ));
        }
    }

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

    let vars = ctx.vars.clone();
    let model_for_vars = model_name.to_string();
    env.add_function("var", move |name: String, default: Option<Value>| {
        match (vars.get(&name), default) {
            (Some(value), _) => Ok(Value::from(minijinja::value::Serde(value))),
            (None, Some(default)) => Ok(default),
            (None, None) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "required var '{name}' not found: vars supplied to {model_for_vars} = {}",
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

    env.add_global("dbt_utils", Value::from_object(DbtUtils));
    env.add_global(
        "this",
        Value::from_object(Relation::plain(RelationName::main(model_name))),
    );
    env.add_global(
        "target",
        minijinja::context! { name => "dev", schema => crate::dialect::DEFAULT_SCHEMA, type => "duckdb", database => crate::dialect::DEFAULT_CATALOG },
    );

    // The imports share line 1 with the model so every later line keeps its number.
    let source = format!("{imports}{}", model.sql);
    let template = env
        .template_from_named_str(model.path.as_str(), &source)
        .map_err(|e| template_error(e, imports.len()))?;
    let mut sql = CappedSql::default();
    let rendered = template.render_captured_to(minijinja::context! {}, &mut sql);
    let recorded = record(&recorder, std::mem::take);
    if let Err(e) = rendered {
        let over = recorded.over.or(sql.over).or((e.kind() == ErrorKind::OutOfFuel).then_some(Limit::TemplateFuel));
        return Err(match over {
            Some(limit) => limit.exceeded(None, format!("{} (model {model_name})", model.path)),
            None => template_error(e, imports.len()),
        });
    }
    let sql = String::from_utf8(sql.bytes).map_err(|e| Error::project(&model.path, e.to_string()))?;

    let mut values = model.config.clone();
    values.extend(recorded.config);
    let config = ModelConfig::resolve(&values).map_err(|message| Error::Project {
        file: model.path.clone(),
        message: format!("model {model_name}: {message}"),
    })?;
    Ok(CompiledModel {
        name: model_name.to_string(),
        sql,
        config,
        values,
        refs: recorded.refs,
        sources: recorded.sources,
        logs: recorded.logs,
        batch: ctx.batch.as_ref().map(|b| b.window),
    })
}

fn template_error(
    project: &Project,
    model: &str,
    model_path: &str,
    err: minijinja::Error,
    prefix_len: usize,
) -> Error {
    let file = err.name().unwrap_or(model_path).to_string();
    let in_model = file == model_path;
    let source = if in_model {
        project.model(model).map(|m| m.sql.as_str())
    } else {
        project.macros.iter().find(|m| m.path == file).map(|m| m.source.as_str())
    };
    let line = err.line().unwrap_or(1);
    let column = match (err.range(), source) {
        (Some(range), Some(text)) => {
            let offset = if in_model { range.start.saturating_sub(prefix_len) } else { range.start };
            let before = &text[..offset.min(text.len())];
            before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1
        }
        _ => 1,
    };
    let message = match err.detail() {
        Some(detail) => detail.to_string(),
        None => err.kind().to_string(),
    };
    Error::Template {
        model: model.to_string(),
        location: Location { file, line, column },
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Materialization, ProjectFiles};

    fn project(model: &str) -> Project {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: t\nvars:\n  region: north\n");
        files.insert("models/src.yml", "sources:\n  - name: raw\n    schema: main\n    tables:\n      - name: events\n");
        files.insert("models/base.sql", "select 1 as id");
        files.insert("models/m.sql", model);
        files.insert("macros/util.sql", "{% macro double(x) %}({{ x }} * 2){% endmacro %}");
        files.parse().unwrap_or_else(|e| panic!("{e}"))
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
