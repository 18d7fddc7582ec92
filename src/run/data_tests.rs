//! dbt's generic data tests, as the SQL dbt itself would run: a test fails with the number of
//! rows its query returns.

use crate::error::{Error, Result, SqlFailure};
use crate::project::{DataTest, Project, TestKind};
use crate::warehouse::{RelationName, Warehouse, collect};

fn test_sql(test: &DataTest) -> String {
    let relation = RelationName::main(&test.model).quoted();
    let column = format!("\"{}\"", test.column.replace('"', "\"\""));
    match &test.kind {
        TestKind::NotNull => format!("select {column} from {relation} where {column} is null"),
        TestKind::Unique => format!(
            "select {column} from {relation} where {column} is not null group by {column} having count(*) > 1"
        ),
        TestKind::AcceptedValues(values) => {
            let list: Vec<String> = values.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect();
            format!(
                "select {column} from {relation} where cast({column} as varchar) not in ({}) group by {column}",
                list.join(", ")
            )
        }
    }
}

/// How many rows violate the test.
pub async fn failures(warehouse: &Warehouse, project: &Project, test: &DataTest) -> Result<usize> {
    let file = project.model(&test.model).map(|m| m.path.clone()).unwrap_or_default();
    let fail = |failure: SqlFailure| {
        failure.into_error(&format!("{file} (test {})", test.name()), |message| Error::Sql {
            at: None,
            model: test.model.clone(),
            file: file.clone(),
            message: format!("test {}: {message}", test.name()),
        })
    };
    let ctx = warehouse.context(project.dialect, &project.aliases()).await?;
    let df = crate::dialect::sql(&ctx, &test_sql(test)).await.map_err(fail)?;
    let rows = collect(df).await.map_err(|e| fail(SqlFailure::of(&e)))?;
    Ok(rows.num_rows())
}
