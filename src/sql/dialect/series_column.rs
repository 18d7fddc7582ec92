//! DuckDB's `generate_series(…)` and `range(…)` in a FROM name their one column after
//! themselves (`select generate_series from generate_series(1, 3)`, as dbt-duckdb's
//! `generate_series` and `date_spine` macros read it); DataFusion's call it `value`. Such a
//! call without column names of its own gets them: `generate_series(1, 3) AS
//! generate_series(generate_series)`, or the column under the alias it has.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Ident, Statement, TableAlias, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut};

pub fn rewrite(statement: &mut Statement) {
    let _ = statement.visit(&mut SeriesColumn);
}

struct SeriesColumn;

impl VisitorMut for SeriesColumn {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, args: Some(_), .. } = factor else { return ControlFlow::Continue(()) };
        let [part] = name.0.as_slice() else { return ControlFlow::Continue(()) };
        let Some(function) = part.as_ident().filter(|i| ["generate_series", "range"].contains(&i.value.to_lowercase().as_str())) else {
            return ControlFlow::Continue(());
        };
        let name = function.value.to_lowercase();
        let column = TableAliasColumnDef::from_name(name.clone());
        match alias {
            Some(alias) if alias.columns.is_empty() => alias.columns.push(column),
            Some(_) => {}
            None => {
                *alias = Some(TableAlias { explicit: true, name: Ident::new(name), columns: vec![column], at: None })
            }
        }
        ControlFlow::Continue(())
    }
}
