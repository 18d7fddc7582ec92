//! A model's compiled SQL as the project view shows it while the model is edited: as a full
//! refresh compiles it, or as the run of one daily partition does (`is_incremental()` true and
//! the partition's window vars), with a first line saying which.

use crate::dbt::project::{Materialization, Project};
use crate::dbt::template::{self, CompileContext};
use crate::error::Result;
use crate::orchestrate::partitions::{parse_range, window_vars};

/// What to compile for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preview {
    FullRefresh,
    /// The run of this partition (a day as typed, `YYYY-MM-DD`).
    Partition(String),
}

/// `model` of `project` compiled with `sql` as its text, for `preview`.
pub fn compiled(project: &Project, model: &str, sql: &str, preview: &Preview) -> Result<String> {
    let mut project = project.clone();
    if let Some(edited) = project.models.get_mut(model) {
        edited.sql = sql.to_string();
    }
    let mut ctx = CompileContext { vars: project.vars.clone(), ..CompileContext::default() };
    let window = match preview {
        Preview::FullRefresh => None,
        Preview::Partition(day) => {
            let (first, last) = parse_range(day)?;
            let window = window_vars(first, last);
            ctx.vars.extend(window.clone());
            ctx.is_incremental = true;
            Some((day, window))
        }
    };
    let compiled = template::compile(&project, model, &ctx)?;
    let header = match window {
        None => "-- full refresh: is_incremental() is false".to_string(),
        Some(_) if compiled.config.materialized != Materialization::Incremental => {
            "-- not an incremental model: built in full every run".to_string()
        }
        Some((day, window)) => {
            let vars = window.iter().map(|(name, value)| format!("{name} = {}", value.as_str().unwrap_or_default()));
            format!("-- partition {day}: {}", vars.collect::<Vec<_>>().join(", "))
        }
    };
    Ok(format!("{header}\n{}", compiled.sql.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::project::ProjectFiles;

    fn shop() -> Project {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: shop");
        files.insert("models/orders.sql", "select 1 as id");
        files.insert(
            "models/daily.sql",
            "{{ config(materialized='incremental') }}\nselect * from {{ ref('orders') }}\n\
             {% if is_incremental() %}where day between '{{ var('min_date') }}' and '{{ var('max_date') }}'{% endif %}",
        );
        files.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_partition_compiles_with_its_window_and_a_full_refresh_without() {
        let project = shop();
        let sql = project.model("daily").map(|m| m.sql.clone()).unwrap_or_default();
        let partition = compiled(&project, "daily", &sql, &Preview::Partition("2023-03-04".into()));
        assert_eq!(
            partition.ok().as_deref(),
            Some("-- partition 2023-03-04: min_date = 2023-03-04, max_date = 2023-03-05\nselect * from \"main\".\"orders\"\nwhere day between '2023-03-04' and '2023-03-05'")
        );
        let full = compiled(&project, "daily", &sql, &Preview::FullRefresh);
        assert_eq!(full.ok().as_deref(), Some("-- full refresh: is_incremental() is false\nselect * from \"main\".\"orders\""));
        let table = compiled(&project, "orders", "select 2 as id", &Preview::Partition("2023-03-04".into()));
        assert_eq!(table.ok().as_deref(), Some("-- not an incremental model: built in full every run\nselect 2 as id"));
    }

    #[test]
    fn an_edit_that_does_not_compile_and_a_bad_day_say_where() {
        let project = shop();
        let error = compiled(&project, "orders", "select {{ nope(", &Preview::FullRefresh).expect_err("unclosed");
        assert_eq!(error.position_in("models/orders.sql").map(|(line, _)| line), Some(1));
        let error = compiled(&project, "daily", "select 1", &Preview::Partition("March 4".into())).expect_err("not a day");
        assert!(error.to_string().contains("`March 4` is not a day"), "{error}");
    }
}
