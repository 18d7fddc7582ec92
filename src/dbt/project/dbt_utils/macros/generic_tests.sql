{#- dbt_utils' data tests most projects use. Each returns the failing rows. -#}

{#- Rows where `expression` (on `column_name`, when the test is on a column) is not true. -#}
{% test expression_is_true(model, expression, column_name=None) %}
    {{ return(adapter.dispatch('test_expression_is_true', 'dbt_utils')(model, expression, column_name)) }}
{% endtest %}

{% macro default__test_expression_is_true(model, expression, column_name) %}
select *
from {{ model }}
where not ({{ column_name ~ ' ' if column_name is not none }}{{ expression }})
{% endmacro %}

{#- Values outside [min_value, max_value] (either bound may be missing; `inclusive=false` makes
    both strict). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {{ return(adapter.dispatch('test_accepted_range', 'dbt_utils')(model, column_name, min_value, max_value, inclusive)) }}
{% endtest %}

{% macro default__test_accepted_range(model, column_name, min_value, max_value, inclusive) %}
{%- set or_equal = '=' if inclusive else '' %}
select *
from {{ model }}
where false
{%- if min_value is not none %}
    or not ({{ column_name }} >{{ or_equal }} {{ min_value }})
{%- endif %}
{%- if max_value is not none %}
    or not ({{ column_name }} <{{ or_equal }} {{ max_value }})
{%- endif %}
{% endmacro %}

{#- Each combination of the columns that appears more than once. -#}
{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) %}
    {{ return(adapter.dispatch('test_unique_combination_of_columns', 'dbt_utils')(model, combination_of_columns, quote_columns)) }}
{% endtest %}

{% macro default__test_unique_combination_of_columns(model, combination_of_columns, quote_columns) %}
{%- set columns = [] %}
{%- for column in combination_of_columns %}{% do columns.append(adapter.quote(column) if quote_columns else column) %}{% endfor %}
select {{ columns | join(', ') }}
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endmacro %}

{#- Fails when the column holds no value at all. -#}
{% test at_least_one(model, column_name) %}
    {{ return(adapter.dispatch('test_at_least_one', 'dbt_utils')(model, column_name)) }}
{% endtest %}

{% macro default__test_at_least_one(model, column_name) %}
select filler_column
from (select count({{ column_name }}) as filler_column from {{ model }}) as counted
where filler_column = 0
{% endmacro %}

{#- Fails when the column holds one value in every row. -#}
{% test not_constant(model, column_name) %}
    {{ return(adapter.dispatch('test_not_constant', 'dbt_utils')(model, column_name)) }}
{% endtest %}

{% macro default__test_not_constant(model, column_name) %}
select filler_column
from (select count(distinct {{ column_name }}) as filler_column from {{ model }}) as counted
where filler_column = 1
{% endmacro %}

{#- Rows whose value is one of `values`. -#}
{% test not_accepted_values(model, column_name, values, quote=true) %}
    {{ return(adapter.dispatch('test_not_accepted_values', 'dbt_utils')(model, column_name, values, quote)) }}
{% endtest %}

{% macro default__test_not_accepted_values(model, column_name, values, quote) %}
{%- set listed = [] %}
{%- for value in values %}{% do listed.append("'" ~ value ~ "'" if quote else value) %}{% endfor %}
select {{ column_name }} as value_field
from {{ model }}
where {{ column_name }} in ({{ listed | join(', ') }})
{% endmacro %}

{#- Rows whose text is empty once trimmed (`trim_whitespace=false` keeps the spaces). -#}
{% test not_empty_string(model, column_name, trim_whitespace=true) %}
    {{ return(adapter.dispatch('test_not_empty_string', 'dbt_utils')(model, column_name, trim_whitespace)) }}
{% endtest %}

{% macro default__test_not_empty_string(model, column_name, trim_whitespace) %}
select {{ column_name }}
from {{ model }}
where {{ 'trim(' ~ column_name ~ ')' if trim_whitespace else column_name }} = ''
{% endmacro %}

{#- Fails when two relations hold different numbers of rows. -#}
{% test equal_rowcount(model, compare_model) %}
    {{ return(adapter.dispatch('test_equal_rowcount', 'dbt_utils')(model, compare_model)) }}
{% endtest %}

{% macro default__test_equal_rowcount(model, compare_model) %}
select model_rows, compared_rows
from (select count(*) as model_rows from {{ model }}) as counted
cross join (select count(*) as compared_rows from {{ compare_model }}) as compared
where model_rows != compared_rows
{% endmacro %}
