{#- Columns to rows: for each column of `relation` not in `exclude` or `remove`, one select of
    the `exclude` columns, the column's name and its value cast to `cast_to`, stacked with
    `union all`. -#}
{%- macro unpivot(relation=none, cast_to='varchar', exclude=none, remove=none, field_name='field_name', value_name='value', quote_identifiers=False) -%}
    {{ return(adapter.dispatch('unpivot', 'dbt_utils')(relation, cast_to, exclude, remove, field_name, value_name, quote_identifiers)) }}
{%- endmacro -%}

{%- macro default__unpivot(relation, cast_to, exclude, remove, field_name, value_name, quote_identifiers) -%}
    {%- if not relation -%}
        {{ exceptions.raise_compiler_error("unpivot needs a relation") }}
    {%- endif -%}
    {%- set kept = exclude or [] -%}
    {%- set skipped = (kept + (remove or [])) | map('lower') | list -%}
    {%- set unpivoted = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.column | lower not in skipped %}{% do unpivoted.append(column) %}{% endif -%}
    {%- endfor -%}
    {%- for column in unpivoted %}
    select
        {%- for keep in kept %}
        {{ adapter.quote(keep) if quote_identifiers else keep }},
        {%- endfor %}
        {%- set value = adapter.quote(column.column) if quote_identifiers else column.column %}
        cast('{{ column.column }}' as {{ dbt.type_string() }}) as {{ adapter.quote(field_name) if quote_identifiers else field_name }},
        cast({{ dbt.cast_bool_to_text(value) if column.data_type | lower == 'boolean' else value }} as {{ cast_to }}) as {{ adapter.quote(value_name) if quote_identifiers else value_name }}
    from {{ relation }}
    {%- if not loop.last %}

    union all
    {% endif -%}
    {%- endfor -%}
{%- endmacro -%}
