{{ config(materialized='incremental', unique_key=['date_of_business', 'zone'], incremental_strategy='delete+insert', on_schema_change='append_new_columns', incremental_predicates=["date_of_business >= '2023-03-01'"]) }}
{%- set columns = ['trip_count', 'total_amount'] -%}
{% macro total(column, factor=1) -%}
    sum({{ column }}) * {{ factor }}
{%- endmacro %}
{{ log('compiling ' ~ this, info=True) }}
-- target {{ target.name }} in {{ target.schema }}
select
    date_of_business,
    '{{ var("region", "north") | upper }}' as region,
    '{{ env_var("HOME", "/home") }}' as home,
    {% for column in columns %}
    {{ total(column, loop.index) }} as {{ column }}{% if not loop.last %},{% endif %}
    {% endfor %}
from {{ ref('location_metrics') }}
{% if is_incremental() %}
where date_of_business between '{{ var('min_date') }}' and '{{ var('max_date') }}'
  and date_of_business > (select max(date_of_business) from {{ this }})
{% endif %}
group by all
