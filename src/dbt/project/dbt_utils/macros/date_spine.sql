{#- One row per `datepart` from `start_date` up to (not including) `end_date`, in a column named
    date_<datepart>: DuckDB's generate_series counts the steps, dbt's dateadd takes them. -#}
{%- macro date_spine(datepart, start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'dbt_utils')(datepart, start_date, end_date)) }}
{%- endmacro -%}

{%- macro default__date_spine(datepart, start_date, end_date) -%}
with spine_steps as (
    {{ dbt_utils.generate_series(dbt_utils.get_intervals_between(start_date, end_date, datepart)) }}
),

spine as (
    select {{ dbt.dateadd(datepart, 'generated_number - 1', start_date) }} as date_{{ datepart }}
    from spine_steps
)

select * from spine
where date_{{ datepart }} <= {{ end_date }}
{%- endmacro -%}

{#- How many `datepart`s lie between two dates, asked of the warehouse (1 while parsing). -#}
{%- macro get_intervals_between(start_date, end_date, datepart) -%}
    {{ return(adapter.dispatch('get_intervals_between', 'dbt_utils')(start_date, end_date, datepart)) }}
{%- endmacro -%}

{%- macro default__get_intervals_between(start_date, end_date, datepart) -%}
    {%- call statement('get_intervals_between', fetch_result=True) -%}
        select {{ dbt.datediff(start_date, end_date, datepart) }}
    {%- endcall -%}
    {%- set result = load_result('get_intervals_between') -%}
    {%- if result and result['data'] -%}
        {{ return(result['data'][0][0]) }}
    {%- else -%}
        {{ return(1) }}
    {%- endif -%}
{%- endmacro -%}

{#- The numbers 1 to `upper_bound` in a column `generated_number`. -#}
{%- macro generate_series(upper_bound) -%}
    {{ return(adapter.dispatch('generate_series', 'dbt_utils')(upper_bound)) }}
{%- endmacro -%}

{%- macro default__generate_series(upper_bound) -%}
select generate_series as generated_number from generate_series(1, {{ upper_bound }})
{%- endmacro -%}
