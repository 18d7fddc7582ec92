{# Bodies from dbt-core 1.11 global_project (macros/utils, macros/adapters/timestamps.sql) + dbt-duckdb 1.11 overrides, resolved for the duckdb adapter. #}

{%- macro type_string() -%}TEXT{%- endmacro -%}

{%- macro type_timestamp() -%}timestamp{%- endmacro -%}

{%- macro type_float() -%}float{%- endmacro -%}

{%- macro type_numeric() -%}numeric(28,6){%- endmacro -%}

{%- macro type_bigint() -%}bigint{%- endmacro -%}

{%- macro type_int() -%}integer{%- endmacro -%}

{%- macro type_boolean() -%}boolean{%- endmacro -%}

{%- macro current_timestamp() -%}
  now()
{%- endmacro -%}

{%- macro snapshot_get_time() -%}
  {{ current_timestamp() }}::timestamp
{%- endmacro -%}

{% macro current_timestamp_backcompat() %}
    current_timestamp::timestamp
{% endmacro %}

{% macro current_timestamp_in_utc_backcompat() %}
    current_timestamp::timestamp
{% endmacro %}

{% macro any_value(expression) -%}

    arbitrary({{ expression }})

{%- endmacro %}

{% macro array_append(array, new_element) -%}
    array_append({{ array }}, {{ new_element }})
{%- endmacro %}

{% macro array_concat(array_1, array_2) -%}
    array_cat({{ array_1 }}, {{ array_2 }})
{%- endmacro %}

{% macro array_construct(inputs=[], data_type='integer') -%}
    {% if inputs|length > 0 %}
    array[ {{ inputs|join(' , ') }} ]
    {% else %}
    array[]::{{data_type}}[]
    {% endif %}
{%- endmacro %}

{% macro bool_or(expression) -%}

    bool_or({{ expression }})

{%- endmacro %}

{% macro cast(field, type) %}
    cast({{field}} as {{type}})
{% endmacro %}

{% macro cast_bool_to_text(field) %}
  
    cast({{ field }} as TEXT)

{% endmacro %}

{% macro concat(fields) -%}
    {{ fields|join(' || ') }}
{%- endmacro %}

{% macro date(year, month, day) -%}
    make_date({{ year }}, {{ month }}, {{ day }})
{%- endmacro %}

{% macro date_spine(datepart, start_date, end_date) %}


    


    with rawdata as (

        {{generate_series(
            datediff(start_date, end_date, datepart)
        )}}

    ),

    all_periods as (

        select (
            {{
                dateadd(
                    datepart,
                    "row_number() over (order by 1) - 1",
                    start_date
                )
            }}
        ) as date_{{datepart}}
        from rawdata

    ),

    filtered as (

        select *
        from all_periods
        where date_{{datepart}} <= {{ end_date }}

    )

    select * from filtered

{% endmacro %}

{% macro date_trunc(datepart, date) -%}
    date_trunc('{{datepart}}', {{date}})
{%- endmacro %}

{% macro dateadd(datepart, interval, from_date_or_timestamp) %}

    {% set unit = datepart | lower -%}
    {%- if unit == 'quarter' -%}
        ({{ from_date_or_timestamp }} + (cast({{ interval }} as bigint) * 3) * interval 1 month)
    {%- elif unit == 'week' -%}
        ({{ from_date_or_timestamp }} + (cast({{ interval }} as bigint) * 7) * interval 1 day)
    {%- else -%}
        ({{ from_date_or_timestamp }} + cast({{ interval }} as bigint) * interval 1 {{ unit }})
    {%- endif -%}

{% endmacro %}

{% macro datediff(first_date, second_date, datepart) -%}
    {% if datepart == 'week' %}
            ({{ datediff(first_date, second_date, 'day') }} // 7 + case
            when date_part('dow', ({{first_date}})::timestamp) <= date_part('dow', ({{second_date}})::timestamp) then
                case when {{first_date}} <= {{second_date}} then 0 else -1 end
            else
                case when {{first_date}} <= {{second_date}} then 1 else 0 end
        end)
    {% else %}
        (date_diff('{{ datepart }}', {{ first_date }}::timestamp, {{ second_date}}::timestamp ))
    {% endif %}
{%- endmacro %}

{% macro equals(expr1, expr2) -%}
    ({{ expr1 }} = {{ expr2 }})
{% endmacro %}

{% macro escape_single_quotes(expression) -%}
{{ expression | replace("'","''") }}
{%- endmacro %}

{% macro except() %}

    except

{% endmacro %}

{% macro get_powers_of_two(upper_bound) %}
    {%- if upper_bound <= 0 %}{{ exceptions.raise_compiler_error("upper bound must be positive") }}{% endif %}
    {%- set ns = namespace(n=none) %}
    {%- for i in range(1, 100) %}{% if ns.n is none and upper_bound <= 2 ** i %}{% set ns.n = i %}{% endif %}{% endfor %}
    {{- return(ns.n) -}}
{% endmacro %}

{% macro generate_series(upper_bound) %}
    select
        generate_series as generated_number
    from generate_series(1, {{ upper_bound }})
{% endmacro %}

{% macro hash(field) -%}
    md5(cast({{ field }} as TEXT))
{%- endmacro %}

{% macro intersect() %}

    intersect

{% endmacro %}

{%- macro default_last_day(date, datepart) -%}
    cast(
        {{dateadd('day', '-1',
        dateadd(datepart, '1', date_trunc(datepart, date))
        )}}
        as date)
{%- endmacro -%}

{% macro last_day(date, datepart) -%}

    {%- if datepart == 'quarter' -%}
    -- duckdb dateadd does not support quarter interval.
    cast(
        {{dateadd('day', '-1',
        dateadd('month', '3', date_trunc(datepart, date))
        )}}
        as date)
    {%- else -%}
    {{default_last_day(date, datepart)}}
    {%- endif -%}

{%- endmacro %}

{% macro length(expression) %}

    length(
        {{ expression }}
    )

{%- endmacro -%}

{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
    {% if limit_num -%}
    list_aggr(
        (array_agg(
            {{ measure }}
            {% if order_by_clause -%}
            {{ order_by_clause }}
            {%- endif %}
        ))[1:{{ limit_num }}],
        'string_agg',
        {{ delimiter_text }}
        )
    {%- else %}
    string_agg(
        {{ measure }},
        {{ delimiter_text }}
        {% if order_by_clause -%}
        {{ order_by_clause }}
        {%- endif %}
        )
    {%- endif %}
{%- endmacro %}

{%- macro string_literal(value) -%}
    '{{ value }}'
{%- endmacro %}

{% macro position(substring_text, string_text) %}

    position(
        {{ substring_text }} in {{ string_text }}
    )

{%- endmacro -%}

{% macro replace(field, old_chars, new_chars) %}

    replace(
        {{ field }},
        {{ old_chars }},
        {{ new_chars }}
    )


{% endmacro %}

{% macro right(string_text, length_expression) %}

    right(
        {{ string_text }},
        {{ length_expression }}
    )

{%- endmacro -%}

{% macro safe_cast(field, type) %}
    
    cast({{field}} as {{type}})
{% endmacro %}

{% macro split_part(string_text, delimiter_text, part_number) %}
    string_split({{ string_text }}, {{ delimiter_text }})[ {{ part_number }} ]
{% endmacro %}

{% macro _split_part_negative(string_text, delimiter_text, part_number) %}

    split_part(
        {{ string_text }},
        {{ delimiter_text }},
          length({{ string_text }})
          - length(
              replace({{ string_text }},  {{ delimiter_text }}, '')
          ) + 2 + {{ part_number }}
        )

{% endmacro %}
