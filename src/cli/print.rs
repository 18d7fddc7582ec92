//! What the commands print: a run and its models, batches and tests, as dbt prints results.

use backfill::{RunRecord, RunStatus};

pub fn run(record: &RunRecord) {
    let status = match record.status {
        RunStatus::Success => "ok",
        RunStatus::Failed => "FAILED",
        RunStatus::Warn => "warn",
        RunStatus::Skipped => "skipped",
    };
    println!("run {} [{}] {} ({} ms) {}", record.id, status, record.started_at, record.duration_ms, record.command);
    for model in &record.models {
        if model.status == RunStatus::Skipped {
            println!("  {} {}: skipped (something it reads failed)", model.name, model.materialization);
            continue;
        }
        println!(
            "  {} {}{}: +{} ~{} -{} rows, {} after ({} ms{}){}{}",
            model.name,
            model.materialization,
            model.strategy.as_deref().map(|s| format!(" ({s})")).unwrap_or_default(),
            model.rows_inserted,
            model.rows_updated,
            model.rows_deleted,
            model.rows_after,
            model.duration_ms,
            Some(model.phases.text()).filter(|t| !t.is_empty()).map(|t| format!(": {t}")).unwrap_or_default(),
            batches_text(&model.batches),
            model.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    for test in &record.tests {
        println!("  test {}: {}", test.name, test.outcome());
    }
    if let Some(error) = &record.error {
        println!("  error: {error}");
    }
}

/// `, 3 batches 2023-03-04..2023-03-06`, or nothing for a model that is not a microbatch.
fn batches_text(batches: &[String]) -> String {
    match batches {
        [] => String::new(),
        [one] => format!(", 1 batch {one}"),
        [first, .., last] => format!(", {} batches {first}..{last}", batches.len()),
    }
}
