//! dbt packages through the `backfill` binary: Backfill's own dbt_utils (macros that read the
//! warehouse, its data tests), a package `dbt deps` installed under dbt_packages/ (its macro
//! dispatched with the project's override first, its generic test), a test that reads the
//! warehouse's columns, and a package nobody installed.

use std::path::Path;

use super::dbt_commands::{backfill, ok, project};

const SHOP: [(&str, &str); 18] = [
    ("dbt_project.yml", "name: shop\n"),
    (
        "packages.yml",
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  - git: https://github.com/acme/money.git\n    revision: v1\n",
    ),
    ("dbt_packages/money/dbt_project.yml", "name: money\nversion: '1.0.0'\n"),
    (
        "dbt_packages/money/macros/units.sql",
        "{% macro to_units(column) %}{{ return(adapter.dispatch('to_units', 'money')(column)) }}{% endmacro %}\n\
         {% macro default__to_units(column) %}{{ column }} / 100{% endmacro %}\n",
    ),
    ("dbt_packages/money/macros/positive.sql", "{% test positive(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n"),
    // A package's own test project is not part of it (this one would not even parse).
    ("dbt_packages/money/integration_tests/dbt_project.yml", "name: [\n"),
    ("macros/units.sql", "{% macro default__to_units(column) %}round({{ column }} / 100.0, 1){% endmacro %}\n"),
    ("seeds/orders.csv", "id,customer,status,cents\n1,ann,placed,1050\n2,ann,shipped,\n3,bob,placed,500\n3,bob,returned,720\n"),
    ("seeds/refunds.csv", "id,reason\n3,late\n"),
    ("models/wide.sql", "select {{ dbt_utils.star(ref('orders'), except=['cents'], prefix='o_') }} from {{ ref('orders') }}"),
    ("models/stacked.sql", "{{ dbt_utils.union_relations([ref('orders'), ref('refunds')]) }}"),
    (
        "models/by_status.sql",
        "select customer, {{ dbt_utils.pivot('status', dbt_utils.get_column_values(ref('orders'), 'status', order_by='status')) }}\n\
         from {{ ref('orders') }} group by customer",
    ),
    ("models/long.sql", "{{ dbt_utils.unpivot(ref('refunds'), exclude=['id']) }}"),
    ("models/days.sql", "{{ dbt_utils.date_spine('day', \"cast('2023-03-01' as date)\", \"cast('2023-03-04' as date)\") }}"),
    ("models/latest.sql", "{{ dbt_utils.deduplicate(ref('orders'), 'id', 'status desc') }}"),
    (
        "models/amounts.sql",
        "select id, {{ money.to_units('cents') }} as euros, {{ dbt_utils.safe_divide('cents', 'id - 1') }} as ratio from {{ ref('orders') }}",
    ),
    // A test asking the warehouse: compiled again when it runs, once `wide` is built.
    (
        "tests/wide_has_three_columns.sql",
        "{% set columns = adapter.get_columns_in_relation(ref('wide')) %}\nselect {{ columns | length }} as n where {{ columns | length }} != 3",
    ),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: amounts\n    data_tests:\n      - dbt_utils.unique_combination_of_columns:\n          arguments: {combination_of_columns: [id, euros]}\n\
         \x20   columns:\n      - name: euros\n        data_tests: [money.positive]\n      - name: id\n        data_tests:\n\
         \x20         - dbt_utils.accepted_range:\n              arguments: {min_value: 1, max_value: 2}\n              config: {severity: warn}\n\
         \x20         - dbt_utils.expression_is_true:\n              arguments: {expression: '> 0'}\n",
    ),
];

fn csv(dir: &Path, project: &str, sql: &str) -> String {
    ok(dir, &["query", "--state", "st", "--project", project, "--format", "csv", sql])
}

#[test]
fn dbt_utils_and_installed_packages_build_and_test() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let project = project(dir.path(), &SHOP);
    let out = backfill(dir.path(), &["build", "--state", "st", "--project", &project]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let tests: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("  test ")).collect();
    assert_eq!(
        tests,
        [
            "dbt_utils_accepted_range_amounts_id__2__1: warn: 2 failing",
            "dbt_utils_expression_is_true_amounts_id___0: pass",
            "dbt_utils_unique_combination_of_columns_amounts_id__euros: pass",
            "money_positive_amounts_euros: pass",
            "wide_has_three_columns: pass",
        ],
        "{stdout}"
    );
    let query = |sql: &str| csv(dir.path(), &project, sql);
    assert_eq!(query("select * from wide order by o_id, o_status"), "o_id,o_customer,o_status\n1,ann,placed\n2,ann,shipped\n3,bob,placed\n3,bob,returned\n");
    assert_eq!(
        query("select * from stacked order by id, status"),
        "_dbt_source_relation,id,customer,status,cents,reason\n\
         \"\"\"main\"\".\"\"orders\"\"\",1,ann,placed,1050,\n\"\"\"main\"\".\"\"orders\"\"\",2,ann,shipped,,\n\
         \"\"\"main\"\".\"\"orders\"\"\",3,bob,placed,500,\n\"\"\"main\"\".\"\"orders\"\"\",3,bob,returned,720,\n\
         \"\"\"main\"\".\"\"refunds\"\"\",3,,,,late\n"
    );
    assert_eq!(query("select * from by_status order by customer"), "customer,placed,returned,shipped\nann,1,0,1\nbob,1,1,0\n");
    assert_eq!(query("select * from long"), "id,field_name,value\n3,reason,late\n");
    assert_eq!(query("select cast(date_day as date) as day from days order by 1"), "day\n2023-03-01\n2023-03-02\n2023-03-03\n");
    assert_eq!(query("select id, status from latest order by id"), "id,status\n1,placed\n2,shipped\n3,returned\n");
    // The project's default__to_units wins over the package's own.
    assert_eq!(query("select * from amounts order by id, euros"), "id,euros,ratio\n1,10.5,\n2,,\n3,5,250\n3,7.2,360\n");
}

#[test]
fn a_package_nobody_installed_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        ("dbt_project.yml", "name: shop\n"),
        ("packages.yml", "packages:\n  - package: calogica/dbt-date\n    version: 0.10.0\n"),
        ("models/a.sql", "select 1 as id"),
    ];
    let project = project(dir.path(), &files);
    let out = backfill(dir.path(), &["ls", "--project", &project]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: packages.yml: package `dbt_date` is not installed: Backfill cannot reach the dbt hub or git; run `dbt deps` \
         and add the project with its dbt_packages/ folder (dbt_utils is built in)\n"
    );
}

/// A package's models, seeds and tests build with the project's, as dbt builds them: its model
/// calls the package's own macro by its bare name and reads the package's var, the project's
/// dbt_project.yml configures it over the package's own config, and `ls` names its nodes by
/// the package.
#[test]
fn a_packages_models_seeds_and_tests_are_built() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = [
        ("dbt_project.yml", "name: shop\nmodels:\n  kit:\n    +materialized: table\n"),
        ("dbt_packages/kit/dbt_project.yml", "name: kit\nvars:\n  floor: 2\nmodels:\n  kit:\n    +materialized: view\n"),
        ("dbt_packages/kit/macros/twice.sql", "{% macro twice(x) %}({{ x }} * 2){% endmacro %}\n"),
        ("dbt_packages/kit/seeds/numbers.csv", "n\n1\n2\n3\n"),
        ("dbt_packages/kit/models/big.sql", "select {{ twice('n') }} as n from {{ ref('numbers') }} where n >= {{ var('floor') }}"),
        ("dbt_packages/kit/models/big.yml", "models:\n  - name: big\n    columns:\n      - name: n\n        data_tests: [unique]\n"),
        ("models/total.sql", "select sum(n) as total from {{ ref('kit', 'big') }}"),
    ];
    let project = project(dir.path(), &files);
    let out = backfill(dir.path(), &["build", "--state", "st", "--project", &project]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("  big table: ") && stdout.contains("  test unique_big_n: pass"), "{stdout}");
    assert_eq!(csv(dir.path(), &project, "select * from total"), "total\n10\n");
    let ls = ok(dir.path(), &["ls", "--project", &project, "--output", "path"]);
    assert_eq!(ls, "models/big.sql\nmodels/total.sql\nseeds/numbers.csv\nmodels/big.yml\n");
    let ls = ok(dir.path(), &["ls", "--project", &project, "--select", "package:kit"]);
    assert_eq!(ls, "kit.big\nkit.numbers\nkit.unique_big_n\n");
    let clash = [files[0], files[1], files[3], ("seeds/numbers.csv", "n\n1\n")];
    let project = super::dbt_commands::project(&dir.path().join("clash"), &clash);
    let out = backfill(dir.path(), &["ls", "--project", &project]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: dbt_packages/kit/seeds/numbers.csv: seed `numbers` is defined twice (also in seeds/numbers.csv)\n"
    );
}
