//! Running a data test as dbt's test materialization does: the test's query of failing rows
//! summed up by its `fail_calc`, compared by `warn_if` and `error_if`, then judged by its
//! severity (pass, warn or fail).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;

use super::introspect::compile_test_live;
use crate::dbt::history::{RunStatus, TestRun};
use crate::dbt::project::{Project, Severity};
use crate::dbt::template::{CompileContext, CompiledTest};
use crate::error::{Error, Result, SqlFailure};
use crate::sql::warehouse::{Warehouse, collect};

/// dbt's `get_test_sql`, with the failures cast to a whole number.
fn test_sql(test: &CompiledTest) -> String {
    let config = &test.config;
    let fail_calc = &config.fail_calc;
    let limit = config.limit.map(|n| format!("\nlimit {n}")).unwrap_or_default();
    format!(
        "select\n  cast({fail_calc} as bigint) as failures,\n  {fail_calc} {} as should_warn,\n  {fail_calc} {} as should_error\nfrom (\n{}{limit}\n) dbt_internal_test",
        config.warn_if, config.error_if, test.sql
    )
}

/// Runs one test on `warehouse`; one whose template asked the warehouse is compiled again
/// against it first, with `ctx`.
pub async fn run(warehouse: &Warehouse, project: &Project, test: &CompiledTest, ctx: &CompileContext) -> Result<TestRun> {
    let recompiled;
    let declared = if test.asked.is_empty() { None } else { project.tests.iter().find(|t| t.name == test.name) };
    let test = match declared {
        Some(declared) => {
            recompiled = compile_test_live(project, declared, ctx, warehouse).await?;
            &recompiled
        }
        None => test,
    };
    let fail = |failure: SqlFailure| {
        failure.into_error(&format!("{} (test {})", test.path, test.name), |message, _| Error::Sql {
            at: None,
            model: test.name.clone(),
            file: test.path.clone(),
            message: format!("test {}: {message}", test.name),
        })
    };
    let ctx = warehouse.context(project.dialect, &project.aliases()).await?;
    let df = crate::sql::dialect::sql(&ctx, &test_sql(test)).await.map_err(fail)?;
    let table = collect(df).await.map_err(|e| fail(SqlFailure::of(&e)))?;
    let row = table.batches.iter().find(|b| b.num_rows() > 0);
    let (failures, should_warn, should_error) = match row {
        Some(batch) => {
            let failures = batch.column(0).as_primitive_opt::<Int64Type>().filter(|a| a.is_valid(0)).map_or(0, |a| a.value(0));
            let flag = |i: usize| batch.column(i).as_boolean_opt().is_some_and(|a| a.is_valid(0) && a.value(0));
            (failures.max(0) as usize, flag(1), flag(2))
        }
        None => (0, false, false),
    };
    let status = if test.config.severity == Severity::Error && should_error {
        RunStatus::Failed
    } else if should_warn {
        RunStatus::Warn
    } else {
        RunStatus::Success
    };
    Ok(TestRun { name: test.name.clone(), failures, status })
}
