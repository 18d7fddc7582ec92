//! dbt seeds: a CSV under `seeds/` becomes a table whose column types are inferred the way
//! dbt's agate type tester does it (integer, then number, date, timestamp, boolean, text);
//! empty fields are nulls.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::dbt::project::Seed;
use crate::sql::csv;
use crate::sql::warehouse::Table;

/// The seed's rows as a typed table.
pub fn table(seed: &Seed) -> Result<Table, String> {
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
        let data_type = infer(&values);
        let typed = match data_type {
            DataType::Boolean => Arc::new(
                values.iter().map(|v| v.map(|s| s.trim().eq_ignore_ascii_case("true"))).collect::<datafusion::arrow::array::BooleanArray>(),
            ) as ArrayRef,
            _ => cast(&values, &data_type).map_err(|e| format!("column {}: {e}", field.name()))?,
        };
        fields.push(Field::new(field.name(), data_type, true));
        columns.push(typed);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| e.to_string())?;
    Ok(Table::new(schema, vec![batch]))
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

    fn seed(csv: &str) -> Table {
        table(&Seed { name: "s".into(), path: "seeds/s.csv".into(), csv: csv.into() }).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn infers_types_like_dbt() {
        let t = seed("id,rate,day,at,flag,name,blank\n1,1.5,2023-03-01,2023-03-01 10:00:00,true,a,\n2,2,2023-03-02,2023-03-02 11:30:00,False,b,\n");
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

    #[test]
    fn text_wins_when_any_value_is_not_a_number() {
        let t = seed("code\n1\nNL\n");
        assert_eq!(t.schema.field(0).data_type(), &DataType::Utf8);
    }
}
