{#- Relations stacked with `union all`, each over the union of their columns (null where one
    lacks a column, each column cast to its type where it first appears, or the longer text
    type), and a column naming the relation each row came from. -#}
{%- macro union_relations(relations, column_override=none, include=[], exclude=[], source_column_name='_dbt_source_relation', where=none) -%}
    {{ return(adapter.dispatch('union_relations', 'dbt_utils')(relations, column_override, include, exclude, source_column_name, where)) }}
{%- endmacro -%}

{%- macro default__union_relations(relations, column_override, include, exclude, source_column_name, where) -%}
    {%- if include and exclude -%}
        {{ exceptions.raise_compiler_error("union_relations takes an include list or an exclude list, not both") }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set overrides = column_override or {} -%}
    {%- set included = include | map('lower') | list -%}
    {%- set excluded = exclude | map('lower') | list -%}
    {#- name → the Column that gives its type, in first-seen order; relation → its column names -#}
    {%- set union_columns = {} -%}
    {%- set order = [] -%}
    {%- set has = {} -%}
    {%- for relation in relations -%}
        {%- set names = [] -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- set key = column.column | lower -%}
            {%- if (include and key not in included) or (exclude and key in excluded) -%}
            {%- elif column.column in union_columns -%}
                {%- do names.append(column.column) -%}
                {%- set seen = union_columns[column.column] -%}
                {%- if column.is_string() and seen.is_string() and column.string_size() > seen.string_size() -%}
                    {%- do union_columns.update({column.column: column}) -%}
                {%- endif -%}
            {%- else -%}
                {%- do names.append(column.column) -%}
                {%- do union_columns.update({column.column: column}) -%}
                {%- do order.append(column.column) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do has.update({relation | string: names}) -%}
    {%- endfor -%}
    {%- if (include or exclude) and not order -%}
        {{ exceptions.raise_compiler_error("union_relations found no columns to union in " ~ (relations | map('string') | join(', '))) }}
    {%- endif -%}
    {%- for relation in relations %}
    (
        select
            {%- if source_column_name is not none %}
            cast({{ dbt.string_literal(relation | string) }} as {{ dbt.type_string() }}) as {{ source_column_name }},
            {%- endif %}
            {%- for name in order %}
            {%- set column = union_columns[name] %}
            cast({{ adapter.quote(name) if name in has[relation | string] else 'null' }} as {{ overrides.get(name, column.data_type) }}) as {{ column.quoted }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ relation }}
        {%- if where %}
        where {{ where }}
        {%- endif %}
    )
    {%- if not loop.last %}

    union all
    {% endif -%}
    {%- endfor -%}
{%- endmacro -%}
