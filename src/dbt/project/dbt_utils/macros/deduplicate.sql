{#- One row per `partition_by`: the first by `order_by`. -#}
{%- macro deduplicate(relation, partition_by, order_by) -%}
    {{ return(adapter.dispatch('deduplicate', 'dbt_utils')(relation, partition_by, order_by)) }}
{%- endmacro -%}

{%- macro default__deduplicate(relation, partition_by, order_by) -%}
select * exclude (_dbt_utils_row_number)
from (
    select *, row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as _dbt_utils_row_number
    from {{ relation }}
) as numbered
where _dbt_utils_row_number = 1
{%- endmacro -%}
