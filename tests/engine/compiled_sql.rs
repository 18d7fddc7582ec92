//! What templates compile to, as snapshot files (insta, in `tests/engine/snapshots/`): the course's
//! models on a first run, incrementally and for a partition's window, and dbt templates beyond
//! the course (macros, dispatch, cross-database macros, loops, generic tests) with their errors.
//! A change in any of them is a diff to review: `cargo insta review`, or run the test with
//! `INSTA_UPDATE=always` and read `git diff`.

use backfill::{LESSON, LESSON_FIRST_VERSION, builtin};
use backfill::{Project, ProjectFiles};
use backfill::Vars;
use backfill::template::{self, CompileContext};
use backfill::window_vars;
use chrono::NaiveDate;

/// `model` compiled as a run would: the project's vars with `vars` on top.
fn compiled(project: &Project, model: &str, is_incremental: bool, vars: Vars) -> String {
    let mut all = project.vars.clone();
    all.extend(vars);
    let ctx = CompileContext { vars: all, is_incremental, ..CompileContext::default() };
    match template::compile(project, model, &ctx) {
        Ok(compiled) => compiled.sql,
        Err(error) => format!("error: {error}"),
    }
}

const FIRST_RUN: bool = false;
const INCREMENTAL: bool = true;

#[test]
fn the_lesson_models() {
    let lesson = builtin(LESSON).unwrap_or_else(|e| panic!("{e}"));
    for model in ["stg_trips", "stg_zones", "location_metrics", "daily_metrics"] {
        insta::assert_snapshot!(format!("lesson_{model}"), compiled(&lesson, model, FIRST_RUN, Vars::new()));
    }
    let day = NaiveDate::from_ymd_opt(2023, 3, 4).unwrap_or_default();
    insta::assert_snapshot!("lesson_daily_metrics_partition_2023_03_04", compiled(&lesson, "daily_metrics", INCREMENTAL, window_vars(day, day)));
    insta::assert_snapshot!("lesson_daily_metrics_incremental_without_vars", compiled(&lesson, "daily_metrics", INCREMENTAL, Vars::new()));
    let first_version = builtin(LESSON_FIRST_VERSION).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_snapshot!("first_version_daily_metrics_incremental", compiled(&first_version, "daily_metrics", INCREMENTAL, Vars::new()));
}

/// A shop's project: what a dbt user writes beyond the course.
fn shop(extra: &[(&str, &str)]) -> Project {
    let mut files = ProjectFiles::default();
    files.insert("dbt_project.yml", "name: shop\nvars:\n  currency: EUR\nmodels:\n  shop:\n    marts:\n      +materialized: table\n");
    files.insert(
        "models/sources.yml",
        "sources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: orders\n      - name: customers\n",
    );
    files.insert(
        "models/schema.yml",
        "models:\n  - name: orders\n    columns:\n      - name: order_id\n        data_tests: [unique, not_null]\n      - name: status\n        data_tests:\n          - accepted_values:\n              arguments:\n                values: [placed, shipped]\n              config:\n                where: \"amount > 0\"\n",
    );
    files.insert(
        "macros/money.sql",
        "{% macro cents_to_money(column, scale=2) %}round({{ column }} / 100, {{ scale }}){% endmacro %}\n\
         {% macro order_key(columns) %}{{ return(adapter.dispatch('order_key')(columns)) }}{% endmacro %}\n\
         {% macro default__order_key(columns) %}{{ dbt.concat(columns) }}{% endmacro %}\n\
         {% macro duckdb__order_key(columns) %}{{ dbt_utils.generate_surrogate_key(columns) }}{% endmacro %}\n",
    );
    files.insert(
        "models/staging/orders.sql",
        "{{ config(materialized='view', tags=['daily']) }}\n\
         select\n    order_id,\n    {{ order_key(['order_id', 'customer_id']) }} as order_key,\n    customer_id,\n    status,\n\
         \x20   {{ cents_to_money('amount_cents') }} as amount,\n    '{{ var(\"currency\") }}' as currency,\n\
         \x20   {{ dbt.datediff('ordered_at', 'shipped_at', 'day') }} as days_to_ship\n\
         from {{ source('raw', 'orders') }}\n",
    );
    files.insert(
        "models/marts/revenue_by_status.sql",
        "{% set statuses = ['placed', 'shipped', 'returned'] %}\n\
         {{ config(materialized='incremental', unique_key='customer_id', incremental_strategy='merge') }}\n\
         select\n    customer_id,\n\
         {%- for status in statuses %}\n    sum(case when status = '{{ status }}' then amount else 0 end) as {{ status }}_amount{{ ',' if not loop.last }}\n{%- endfor %}\n\
         from {{ ref('orders') }}\n\
         {% if is_incremental() %}where customer_id not in (select customer_id from {{ this }}){% endif %}\n\
         group by all\n",
    );
    for (path, text) in extra {
        files.insert(path, text);
    }
    files.parse().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn dbt_templates_beyond_the_course() {
    let project = shop(&[]);
    insta::assert_snapshot!("shop_orders", compiled(&project, "orders", FIRST_RUN, Vars::new()));
    insta::assert_snapshot!("shop_revenue_by_status_first_run", compiled(&project, "revenue_by_status", FIRST_RUN, Vars::new()));
    insta::assert_snapshot!("shop_revenue_by_status_incremental", compiled(&project, "revenue_by_status", INCREMENTAL, Vars::new()));
    for test in &project.tests {
        let sql = template::compile_test(&project, test, &CompileContext::default()).map_or_else(|e| format!("error: {e}"), |t| t.sql);
        insta::assert_snapshot!(format!("shop_test_{}", test.name), sql);
    }
}

/// Each mistake is named with its file, line and column (or its model), as the page and the CLI
/// show it.
#[test]
fn template_errors() {
    let cases = [
        ("unknown_ref", "select * from {{ ref('nowhere') }}"),
        ("unknown_macro", "select {{ no_such_macro('x') }}"),
        ("unclosed_block", "select 1\n{% if true %}\nfrom t\n"),
        ("compiler_error", "{{ exceptions.raise_compiler_error('amounts must be in cents') }}"),
        ("undefined_var", "select '{{ var(\"region\") }}' as region"),
        ("unknown_package_macro", "select {{ dbt_utils.no_such_macro(ref('orders')) }}"),
    ];
    for (name, sql) in cases {
        let project = shop(&[("models/broken.sql", sql)]);
        insta::assert_snapshot!(format!("error_{name}"), compiled(&project, "broken", FIRST_RUN, Vars::new()));
    }
}

/// dbt inlines an ephemeral model as a CTE named `__dbt__cte__<model>` in each model that reads
/// it, the ephemeral models it reads in turn first, inside the reader's own leading `with`.
#[test]
fn ephemeral_models_are_inlined_as_ctes() {
    let project = shop(&[
        ("models/staging/paid_orders.sql", "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('orders') }} where status != 'returned'\n"),
        ("models/staging/big_paid_orders.sql", "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('paid_orders') }} where amount > 100\n"),
        (
            "models/marts/customer_spend.sql",
            "-- what each customer paid\nwith totals as (\n    select customer_id, sum(amount) as paid from {{ ref('paid_orders') }} group by all\n)\n\
             select t.*, t.customer_id in (select customer_id from {{ ref('big_paid_orders') }}) as big\nfrom totals t\n",
        ),
        ("models/marts/big_orders.sql", "select * from {{ ref('big_paid_orders') }}\n"),
    ]);
    insta::assert_snapshot!("ephemeral_read_with_its_own_with", compiled(&project, "customer_spend", FIRST_RUN, Vars::new()));
    insta::assert_snapshot!("ephemeral_read_without_a_with", compiled(&project, "big_orders", FIRST_RUN, Vars::new()));
    insta::assert_snapshot!("ephemeral_itself", compiled(&project, "paid_orders", FIRST_RUN, Vars::new()));
    let with_test = shop(&[
        ("models/staging/paid_orders.sql", "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('orders') }} where status != 'returned'\n"),
        ("tests/no_free_paid_orders.sql", "select * from {{ ref('paid_orders') }} where amount = 0\n"),
    ]);
    let test = with_test.tests.iter().find(|t| t.name == "no_free_paid_orders").unwrap_or_else(|| panic!("no singular test"));
    let sql = template::compile_test(&with_test, test, &CompileContext::default()).map_or_else(|e| format!("error: {e}"), |t| t.sql);
    insta::assert_snapshot!("ephemeral_read_by_a_singular_test", sql);
}
