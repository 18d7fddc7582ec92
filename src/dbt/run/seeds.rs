//! dbt seeds: a CSV under `seeds/` becomes a table whose column types are inferred the way
//! dbt's agate type tester does it (integer, then number, date, timestamp, boolean, text), or
//! cast to the SQL type its `column_types` config gives; empty fields are nulls.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::dbt::project::Seed;
use crate::sql::csv;
use crate::sql::dialect::SqlDialect;
use crate::sql::warehouse::{Aliases, RelationName, Table, Warehouse, collect};

/// The seed's rows as a typed table.
pub async fn table(seed: &Seed, dialect: SqlDialect) -> Result<Table, String> {
    let batches = csv::read_as_text(seed.csv.as_bytes())?;
    let Some(first) = batches.first() else {
        let schema = header_only_schema(&seed.csv);
        return Ok(Table::new(schema, Vec::new()));
    };
    let text_schema = first.schema();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (index, field) in text_schema.fields().iter().enumerate() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(index).as_ref()).collect();
        let text = concat(&parts).map_err(|e| e.to_string())?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| format!("column {}: not read as text", field.name()))?;
        // Empty fields are nulls, as agate reads them.
        let values: StringArray = text.iter().map(|v| v.filter(|s| !s.trim().is_empty())).collect();
        let declared = seed.column_types.iter().find(|(c, _)| c.eq_ignore_ascii_case(field.name())).map(|(_, t)| t);
        let typed = match declared {
            Some(sql_type) => cast_as(field.name(), values, sql_type, dialect).await?,
            None => match infer(&values) {
                DataType::Boolean => Arc::new(
                    values.iter().map(|v| v.map(|s| s.trim().eq_ignore_ascii_case("true"))).collect::<datafusion::arrow::array::BooleanArray>(),
                ) as ArrayRef,
                data_type => cast(&values, &data_type).map_err(|e| format!("column {}: {e}", field.name()))?,
            },
        };
        fields.push(Field::new(field.name(), typed.data_type().clone(), true));
        columns.push(typed);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| e.to_string())?;
    Ok(Table::new(schema, vec![batch]))
}

/// A column's text cast to a `column_types` type, by the SQL dialect's own `CAST` (so the type
/// is spelled as in a model, and means what it means there).
async fn cast_as(column: &str, values: StringArray, sql_type: &str, dialect: SqlDialect) -> Result<ArrayRef, String> {
    let fail = |e: String| format!("column {column} as {sql_type} (column_types): {e}");
    let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(values)]).map_err(|e| fail(e.to_string()))?;
    let mut scratch = Warehouse::default();
    scratch.put_table(RelationName::main("seed_text"), Table::new(schema, vec![batch]));
    let ctx = scratch.context(dialect, &Aliases::new()).await.map_err(|e| fail(e.to_string()))?;
    let df = crate::sql::dialect::sql(&ctx, &format!("SELECT CAST(value AS {sql_type}) AS value FROM seed_text"))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let typed = collect(df).await.map_err(|e| fail(e.to_string()))?;
    let parts: Vec<&dyn Array> = typed.batches.iter().map(|b| b.column(0).as_ref()).collect();
    if parts.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(typed.schema.field(0).data_type()));
    }
    concat(&parts).map_err(|e| fail(e.to_string()))
}

/// The first type every non-null value fits, in agate's order.
fn infer(values: &StringArray) -> DataType {
    let all = |test: fn(&str) -> bool| values.iter().flatten().all(|v| test(v.trim()));
    if all(|v| v.parse::<i32>().is_ok()) {
        DataType::Int32
    } else if all(|v| v.parse::<f64>().is_ok_and(f64::is_finite)) {
        DataType::Float64
    } else if all(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()) {
        DataType::Date32
    } else if all(|v| crate::dbt::run::parse_time(v).is_some()) {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    } else if all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")) {
        DataType::Boolean
    } else {
        DataType::Utf8
    }
}

/// A seed with a header and no rows: every column an integer, as agate types an empty column.
fn header_only_schema(csv: &str) -> Arc<Schema> {
    let header = csv.lines().next().unwrap_or_default();
    Arc::new(Schema::new(
        header
            .split(',')
            .filter(|h| !h.trim().is_empty())
            .map(|h| Field::new(h.trim().trim_matches('"'), DataType::Int32, true))
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn seed(csv: &str) -> Table {
        typed(csv, &[]).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn typed(csv: &str, column_types: &[(&str, &str)]) -> Result<Table, String> {
        let column_types = column_types.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect();
        let seed = Seed { name: "s".into(), path: "seeds/s.csv".into(), csv: csv.into(), column_types, package: None };
        table(&seed, SqlDialect::Duckdb).await
    }

    /// `column_types` casts the text as a model's `CAST` would; the rest is inferred.
    #[tokio::test]
    async fn column_types_override_inference() {
        let t = typed("id,price,code\n1,10.5,007\n2,,010\n", &[("price", "numeric(28,6)"), ("CODE", "varchar")]).await;
        let t = t.unwrap_or_else(|e| panic!("{e}"));
        let types: Vec<DataType> = t.schema.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(types, [DataType::Int32, DataType::Decimal128(28, 6), DataType::Utf8View]);
        assert_eq!(crate::sql::query::to_csv(&t), "id,price,code\n1,10.500000,007\n2,,010\n");
        let bad = typed("id\nx\n", &[("id", "integer")]).await.err().unwrap_or_default();
        assert!(bad.starts_with("column id as integer (column_types): "), "{bad}");
    }

    #[tokio::test]
    async fn infers_types_like_dbt() {
        let t = seed("id,rate,day,at,flag,name,blank\n1,1.5,2023-03-01,2023-03-01 10:00:00,true,a,\n2,2,2023-03-02,2023-03-02 11:30:00,False,b,\n").await;
        let types: Vec<DataType> = t.schema.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(
            types,
            [
                DataType::Int32,
                DataType::Float64,
                DataType::Date32,
                DataType::Timestamp(TimeUnit::Microsecond, None),
                DataType::Boolean,
                DataType::Utf8,
                DataType::Int32,
            ]
        );
        assert_eq!(t.num_rows(), 2);
        let blank = t.batches[0].column(6);
        assert_eq!(blank.null_count(), 2);
    }

    #[tokio::test]
    async fn text_wins_when_any_value_is_not_a_number() {
        let t = seed("code\n1\nNL\n").await;
        assert_eq!(t.schema.field(0).data_type(), &DataType::Utf8);
    }
}
