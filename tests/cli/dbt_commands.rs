//! dbt's command words through the `backfill` binary: `compile` and `show` (with `--inline`,
//! `-s`, YAML `--vars`), `seed`/`run`/`snapshot`/`test`, `ls`, data tests passing, warning and failing as
//! dbt reports them, and `materialize` going on past a failed partition as a Dagster backfill
//! does.

use std::path::Path;
use std::process::{Command, Output};

use backfill::{LESSON, builtin};

pub fn backfill(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backfill"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start backfill: {e}"))
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = backfill(dir, args);
    assert!(out.status.success(), "backfill {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A state folder `st` with a small March built by the lesson's project.
fn built() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    ok(dir.path(), &["gen", "--month", "2023-03", "--rows", "5000", "--out", "yellow_tripdata_2023-03.parquet"]);
    ok(dir.path(), &["load", "--state", "st", "yellow_tripdata_2023-03.parquet"]);
    ok(dir.path(), &["build", "--state", "st"]);
    dir
}

#[test]
fn compile_prints_the_sql_a_run_would_run() {
    let dir = built();
    let first_run = ok(dir.path(), &["compile", "-s", "daily_metrics"]);
    assert!(first_run.starts_with("Compiled node 'daily_metrics' is:\n"), "{first_run}");
    assert!(!first_run.contains("between"), "without a state it compiles as a first run:\n{first_run}");
    // Against the state the table exists: incremental, with the vars given as YAML.
    let next_run = ok(dir.path(), &["compile", "--state", "st", "-s", "daily_metrics", "--vars", "{min_date: 2023-03-04, max_date: 2023-03-05}"]);
    assert!(next_run.contains("where date_of_business between '2023-03-04' and '2023-03-05'"), "{next_run}");
    let inline = ok(dir.path(), &["compile", "--inline", "select * from {{ ref('stg_zones') }}"]);
    assert_eq!(inline, "Compiled inline node is:\nselect * from \"main\".\"stg_zones\"\n");
    let out = backfill(dir.path(), &["compile", "--vars", "[1]"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: --vars must be a mapping, like '{min_date: 2023-03-04}', not `[1]`\n");
}

#[test]
fn selection_speaks_dbt() {
    let dir = built();
    let names = |args: &[&str]| -> Vec<String> {
        ok(dir.path(), args).lines().filter_map(|l| l.strip_prefix("Compiled node '")?.split('\'').next().map(str::to_string)).collect()
    };
    assert_eq!(names(&["compile", "-s", "stg_trips+,config.materialized:incremental"]), ["daily_metrics"], "a comma intersects");
    assert_eq!(names(&["compile", "-s", "stg_trips+", "--exclude", "daily_metrics"]), ["stg_trips", "location_metrics"]);
    assert_eq!(names(&["compile", "-s", "source:raw_taxis.zones+1"]), ["stg_zones"]);
    let built = ok(dir.path(), &["build", "--state", "st", "-s", "path:models/staging", "--exclude", "stg_zones"]);
    assert!(built.contains("dbt build --select path:models/staging --exclude stg_zones"), "{built}");
}

/// A dbt project folder under `dir` holding `files`; returns its path.
pub fn project(dir: &Path, files: &[(&str, &str)]) -> String {
    let project = dir.join("project");
    for (path, text) in files {
        let file = project.join(path);
        std::fs::create_dir_all(file.parent().unwrap_or(&project)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(file, text).unwrap_or_else(|e| panic!("{e}"));
    }
    project.display().to_string()
}

/// A shop: a seed with a null price, and orders one of whose customers is missing.
const SHOP: [(&str, &str); 9] = [
    ("dbt_project.yml", "name: shop\n"),
    ("seeds/prices.csv", "id,price\n1,10\n2,\n"),
    ("models/priced.sql", "select id, price * 2 as doubled from {{ ref('prices') }}"),
    ("models/customers.sql", "select 1 as id"),
    ("models/orders.sql", "select 1 as id, 1 as customer_id, 'placed' as status union all select 2, 3, 'gone'"),
    ("models/order_totals.sql", "select count(*) as orders from {{ ref('orders') }}"),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: priced\n    columns:\n      - name: doubled\n        tests: [not_null]\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [unique, is_positive]\n      - name: customer_id\n        data_tests:\n          - relationships:\n              arguments:\n                to: ref('customers')\n                field: id\n      - name: status\n        data_tests:\n          - accepted_values:\n              arguments:\n                values: [placed, shipped]\n              config:\n                severity: warn\n",
    ),
    ("tests/generic/is_positive.sql", "{% test is_positive(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}"),
    ("tests/no_free_orders.sql", "select * from {{ ref('orders') }} where id = 0"),
];

#[test]
fn seed_run_and_test_do_their_part_of_build() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let project = project(dir.path(), &SHOP);
    let run = |command: &str| backfill(dir.path(), &[command, "--state", "st", "--project", &project, "-s", "prices+"]);
    let (model, seed) = ("  priced ", "  prices ");
    let seeded = String::from_utf8_lossy(&run("seed").stdout).into_owned();
    assert!(seeded.contains("dbt seed") && seeded.contains(seed) && !seeded.contains(model), "{seeded}");
    let ran = run("run");
    let ran_out = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "run runs no tests, so the null price passes: {ran_out}");
    assert!(ran_out.contains("dbt run") && ran_out.contains(model) && !ran_out.contains(seed) && !ran_out.contains("test "), "{ran_out}");
    let tested = run("test");
    let tested_out = String::from_utf8_lossy(&tested.stdout);
    assert_eq!(tested.status.code(), Some(1), "the null price fails not_null: {tested_out}");
    assert!(!tested_out.contains(model), "test builds nothing: {tested_out}");
    assert!(String::from_utf8_lossy(&tested.stderr).contains("test not_null_priced_doubled failed: 1 failing row(s)"));
}

#[test]
fn tests_pass_warn_and_fail_as_dbt_reports_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let project = project(dir.path(), &SHOP);
    let build = |args: &[&str]| backfill(dir.path(), &[&["build", "--state", "st", "--project", &project], args].concat());
    let tests_of = |stdout: &str| -> Vec<String> { stdout.lines().filter_map(|l| l.strip_prefix("  test ")).map(str::to_string).collect() };
    let out = build(&["-s", "orders+", "customers"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        tests_of(&stdout),
        [
            "accepted_values_orders_status__placed__shipped: warn: 1 failing",
            "is_positive_orders_id: pass",
            "no_free_orders: pass",
            "relationships_orders_customer_id__id__ref_customers_: fail: 1 failing",
            "unique_orders_id: pass",
        ],
        "each test runs once what it reads is built; a failure skips only the models built from what it read:\n{stdout}"
    );
    assert!(stdout.contains("\n  order_totals view: skipped (something it reads failed)\n"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "error: test relationships_orders_customer_id__id__ref_customers_ failed: 1 failing row(s)\n");
    // --fail-fast stops at that failure.
    let out = build(&["-s", "orders+", "customers", "--fail-fast"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(tests_of(&stdout).len(), 4, "{stdout}");
    assert!(!stdout.contains("order_totals") && stdout.contains("dbt build --select orders+ customers --fail-fast"), "{stdout}");
    // A warning alone fails nothing.
    let out = build(&["-s", "orders", "--exclude", "test_name:relationships"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("  test accepted_values_orders_status__placed__shipped: warn: 1 failing\n"), "{stdout}");
    assert!(stdout.contains("  test unique_orders_id: pass\n"), "{stdout}");
}

#[test]
fn ls_lists_what_a_selection_picks_as_dbt_prints_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let project = project(dir.path(), &SHOP);
    let ls = |args: &[&str]| -> Vec<String> { ok(dir.path(), &[&["ls", "--project", &project], args].concat()).lines().map(str::to_string).collect() };
    assert_eq!(
        ls(&[]),
        [
            "shop.customers",
            "shop.order_totals",
            "shop.orders",
            "shop.priced",
            "shop.prices",
            "shop.accepted_values_orders_status__placed__shipped",
            "shop.is_positive_orders_id",
            "shop.no_free_orders",
            "shop.not_null_priced_doubled",
            "shop.relationships_orders_customer_id__id__ref_customers_",
            "shop.unique_orders_id",
        ]
    );
    assert_eq!(ls(&["-s", "customers", "--resource-type", "test", "-o", "name"]), ["relationships_orders_customer_id__id__ref_customers_"]);
    assert_eq!(ls(&["--select", "test_type:singular", "--output", "path"]), ["tests/no_free_orders.sql"]);
    assert_eq!(ls(&["-s", "prices+", "--resource-type", "model", "seed"]), ["shop.priced", "shop.prices"]);
    let json = ls(&["-s", "priced", "--resource-type", "model", "-o", "json"]);
    assert_eq!(json.len(), 1);
    let node: serde_json::Value = serde_json::from_str(&json[0]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(node["depends_on"], serde_json::json!(["prices"]));
    assert_eq!(node["original_file_path"], "models/priced.sql");
}

#[test]
fn show_previews_rows_as_the_query_returns_them() {
    let dir = built();
    let shown = ok(dir.path(), &["show", "--state", "st", "--inline", "select count(*) as n from {{ source('raw_taxis', 'trips') }}"]);
    assert_eq!(shown, "Previewing inline node:\nn\n----\n5000\n(1 row)\n");
    let zones = ok(dir.path(), &["show", "--state", "st", "-s", "stg_zones", "--limit", "3"]);
    let expected = ok(dir.path(), &["query", "--state", "st", "select * from stg_zones limit 3"]);
    assert_eq!(zones, format!("Previewing node 'stg_zones':\n{expected}\n"));
    let out = backfill(dir.path(), &["show", "--state", "st", "--inline", "select nope from {{ ref('stg_zones') }}"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: inline_query.sql:1:8: model inline_query: "), "{stderr}");
}

#[test]
fn a_backfill_goes_on_past_a_failed_partition() {
    let dir = built();
    let project = dir.path().join("project");
    for (path, text) in builtin(LESSON).unwrap_or_else(|e| panic!("{e}")).files.0 {
        let text = if path.ends_with("daily_metrics.sql") {
            text.replace("select *\nfrom daily_summary", "select *{% if var('min_date', '') == '2023-03-05' %}, no_such_column{% endif %}\nfrom daily_summary")
        } else {
            text
        };
        let file = project.join(&path);
        std::fs::create_dir_all(file.parent().unwrap_or(&project)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(file, text).unwrap_or_else(|e| panic!("{e}"));
    }
    let project = project.display().to_string();
    let out = backfill(dir.path(), &["materialize", "--state", "st", "--project", &project, "--partition", "2023-03-04...2023-03-06"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout.matches("dbt build --select daily_metrics").count(), 2, "the two good runs are printed:\n{stdout}");
    assert!(stderr.starts_with("error: 1 of 3 partition runs failed (the other 2 were materialized): 2023-03-05: "), "{stderr}");
    let partitions = ok(dir.path(), &["partitions", "--state", "st", "--project", &project]);
    let statuses: Vec<&str> = partitions.lines().skip(3).take(3).map(|l| l.split(' ').nth(1).unwrap_or_default()).collect();
    assert_eq!(statuses, ["materialized", "failed", "materialized"], "{partitions}");
}

/// `snapshot` runs only the snapshots; a changed row gets a new version and its old one a
/// `dbt_valid_to`; with `hard_deletes: invalidate` a row gone from the query is closed too;
/// `run` leaves snapshots alone.
#[test]
fn snapshots_keep_each_version_and_close_deleted_rows() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let seed = |rows: &str| ("seeds/people.csv", format!("id,team\n{rows}"));
    let files = |rows: &str| {
        let (path, csv) = seed(rows);
        let snapshot = "{% snapshot teams %}\n{{ config(unique_key='id', strategy='check', check_cols='all', hard_deletes='invalidate') }}\nselect * from {{ ref('people') }}\n{% endsnapshot %}\n";
        project(dir.path(), &[("dbt_project.yml", "name: people\n"), (path, csv.as_str()), ("snapshots/teams.sql", snapshot), ("models/current.sql", "select * from {{ ref('teams') }} where dbt_valid_to is null")])
    };
    let project = files("1,red\n2,blue\n3,green\n");
    let history = |dir: &Path| {
        let sql = "select id, team, dbt_valid_to is null as current from teams order by id, current";
        ok(dir, &["query", "--state", "st", "--project", &project, "--format", "csv", sql])
    };
    ok(dir.path(), &["seed", "--state", "st", "--project", &project]);
    let ran = ok(dir.path(), &["run", "--state", "st", "--project", &project, "-s", "teams"]);
    assert!(!ran.contains("  teams "), "dbt run builds no snapshot: {ran}");
    let snapped = ok(dir.path(), &["snapshot", "--state", "st", "--project", &project]);
    assert!(snapped.contains("dbt snapshot") && snapped.contains("  teams "), "{snapped}");
    assert_eq!(history(dir.path()), "id,team,current\n1,red,true\n2,blue,true\n3,green,true\n");

    files("1,red\n2,yellow\n");
    ok(dir.path(), &["seed", "--state", "st", "--project", &project]);
    ok(dir.path(), &["snapshot", "--state", "st", "--project", &project]);
    assert_eq!(history(dir.path()), "id,team,current\n1,red,true\n2,blue,false\n2,yellow,true\n3,green,false\n");
    let listed = ok(dir.path(), &["ls", "--project", &project, "--resource-type", "snapshot"]);
    assert_eq!(listed, "people.teams.teams\n");
    ok(dir.path(), &["build", "--state", "st", "--project", &project, "-s", "current"]);
    let current = ok(dir.path(), &["query", "--state", "st", "--project", &project, "--format", "csv", "select id, team from current order by id"]);
    assert_eq!(current, "id,team\n1,red\n2,yellow\n", "a model reads a snapshot's current rows");
}

/// With `hard_deletes: new_record` a row gone from the query gets a version saying so
/// (`dbt_is_deleted` 'True', open), once however many runs it stays gone; back in the query,
/// that version closes and a new one opens.
#[test]
fn a_new_record_snapshot_keeps_deletions_as_versions() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = |rows: &str| {
        let csv = format!("id,team\n{rows}");
        let snapshot = "{% snapshot teams %}\n{{ config(unique_key='id', strategy='check', check_cols='all', hard_deletes='new_record') }}\nselect * from {{ ref('people') }}\n{% endsnapshot %}\n";
        project(dir.path(), &[("dbt_project.yml", "name: people\n"), ("seeds/people.csv", csv.as_str()), ("snapshots/teams.sql", snapshot)])
    };
    let snapshot = |rows: &str| {
        let project = files(rows);
        ok(dir.path(), &["build", "--state", "st", "--project", &project]);
        let sql = "select id, team, dbt_is_deleted, dbt_valid_to is null as current, count(distinct dbt_scd_id) over () as ids \
                   from teams order by id, dbt_valid_from, current";
        ok(dir.path(), &["query", "--state", "st", "--project", &project, "--format", "csv", sql])
    };
    let header = "id,team,dbt_is_deleted,current,ids\n";
    assert_eq!(snapshot("1,red\n2,blue\n"), format!("{header}1,red,False,true,2\n2,blue,False,true,2\n"));
    let deleted = format!("{header}1,red,False,true,3\n2,blue,False,false,3\n2,blue,True,true,3\n");
    assert_eq!(snapshot("1,red\n"), deleted);
    assert_eq!(snapshot("1,red\n"), deleted, "a deletion is recorded once");
    assert_eq!(
        snapshot("1,red\n2,blue\n"),
        format!("{header}1,red,False,true,4\n2,blue,False,false,4\n2,blue,True,false,4\n2,blue,False,true,4\n")
    );
}

#[test]
fn yaml_describing_a_model_without_sql_is_a_warning_as_in_dbt() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        ("dbt_project.yml", "name: shop\n"),
        ("models/a.sql", "select 1 as id"),
        ("models/schema.yml", "models:\n  - name: gone\n    columns:\n      - name: id\n        data_tests: [not_null]\n"),
    ];
    let project = project(dir.path(), &files);
    let out = backfill(dir.path(), &["ls", "--project", &project]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "shop.a\n", "gone's test is left out with it");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warning: models/schema.yml: describes model `gone`, which has no .sql file; left out, as dbt does\n"
    );
}

#[test]
fn a_bad_config_fails_its_model_when_it_runs_as_in_dbt() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        ("dbt_project.yml", "name: shop\n"),
        ("models/good.sql", "select 1 as id"),
        ("models/typo.sql", "{{ config(materialized='tabel') }}\nselect 1 as id"),
        ("models/after_typo.sql", "select * from {{ ref('typo') }}"),
        ("models/odd.sql", "{{ config(materialized='incremental', incremental_strategy='Bad_Strategy') }}\nselect 1 as id"),
    ];
    let project = project(dir.path(), &files);
    let build = |args: &[&str]| backfill(dir.path(), &[&["build", "--state", "st", "--project", &project], args].concat());
    let out = build(&["--exclude", "odd"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: models/typo.sql: model typo: config materialized `tabel` is not one of view, table, incremental, ephemeral, snapshot\n"
    );
    assert!(stdout.contains("\n  after_typo view: skipped (something it reads failed)\n"), "{stdout}");
    assert!(stdout.contains("\n  good view: "), "the rest of the graph builds: {stdout}");
    // dbt-duckdb looks the strategy up only for an incremental run: the first builds the table.
    let first = build(&["-s", "odd"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let again = build(&["-s", "odd"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "error: models/odd.sql: model odd: config incremental_strategy `Bad_Strategy` is not one of append, merge, delete+insert, microbatch\n"
    );
}
