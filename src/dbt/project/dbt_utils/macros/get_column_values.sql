{#- The distinct values of `column` in `table`, most frequent first (`order_by`), at most
    `max_records`; `default` when the relation does not exist yet, or while parsing. -#}
{%- macro get_column_values(table, column, order_by='count(*) desc', max_records=none, default=none, where=none) -%}
    {{ return(adapter.dispatch('get_column_values', 'dbt_utils')(table, column, order_by, max_records, default, where)) }}
{%- endmacro -%}

{%- macro default__get_column_values(table, column, order_by, max_records, default, where) -%}
    {%- if not execute -%}
        {{ return(default or []) }}
    {%- endif -%}
    {%- if adapter.get_relation(database=table.database, schema=table.schema, identifier=table.identifier) is none -%}
        {%- if default is none -%}
            {{ exceptions.raise_compiler_error("get_column_values: relation " ~ table ~ " does not exist and no default was given") }}
        {%- endif -%}
        {{ return(default) }}
    {%- endif -%}
    {%- call statement('get_column_values', fetch_result=True) -%}
        select {{ column }} as value
        from {{ table }}
        {%- if where is not none %}
        where {{ where }}
        {%- endif %}
        group by {{ column }}
        order by {{ order_by }}
        {%- if max_records is not none %}
        limit {{ max_records }}
        {%- endif %}
    {%- endcall -%}
    {%- set result = load_result('get_column_values') -%}
    {%- if result and result['data'] -%}
        {{ return(result['data'] | map(attribute=0) | list) }}
    {%- else -%}
        {{ return(default) }}
    {%- endif -%}
{%- endmacro -%}

{#- The first column of the first row `sql` returns, or `default` when it returns none. -#}
{%- macro get_single_value(sql, default=none) -%}
    {{ return(adapter.dispatch('get_single_value', 'dbt_utils')(sql, default)) }}
{%- endmacro -%}

{%- macro default__get_single_value(sql, default) -%}
    {%- if not execute -%}
        {{ return(default) }}
    {%- endif -%}
    {%- set result = run_query(sql) -%}
    {%- if result.rows | length == 0 -%}
        {{ return(default) }}
    {%- endif -%}
    {{ return(result.rows[0][0]) }}
{%- endmacro -%}
