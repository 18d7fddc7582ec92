{#- Every column of a relation but `except`, each optionally aliased: `star` writes the select
    list, `get_filtered_columns_in_relation` gives the names. Both read the warehouse, so while
    the graph is parsed they answer `*` and []. -#}
{%- macro star(from, relation_alias=False, except=[], prefix='', suffix='', quote_identifiers=True, unquote_aliases=False, rename={}) -%}
    {{ return(adapter.dispatch('star', 'dbt_utils')(from, relation_alias, except, prefix, suffix, quote_identifiers, unquote_aliases, rename)) }}
{%- endmacro -%}

{%- macro default__star(from, relation_alias, except, prefix, suffix, quote_identifiers, unquote_aliases, rename) -%}
    {%- if not execute -%}
        {{ return('*') }}
    {%- endif -%}
    {%- set renames = {} -%}
    {%- for name, alias in rename.items() -%}
        {%- do renames.update({name | lower: alias}) -%}
    {%- endfor -%}
    {%- set items = [] -%}
    {%- for column in dbt_utils.get_filtered_columns_in_relation(from, except) -%}
        {%- set qualifier = relation_alias ~ '.' if relation_alias else '' -%}
        {%- set written = qualifier ~ (adapter.quote(column) if quote_identifiers else column) -%}
        {%- set renamed = prefix ~ column ~ suffix -%}
        {%- if column | lower in renames -%}
            {%- set written = written ~ ' as ' ~ renames[column | lower] -%}
        {%- elif quote_identifiers and unquote_aliases -%}
            {%- set written = written ~ ' as ' ~ renamed -%}
        {%- elif prefix or suffix -%}
            {%- set written = written ~ ' as ' ~ (adapter.quote(renamed) if quote_identifiers else renamed) -%}
        {%- endif -%}
        {%- do items.append(written) -%}
    {%- endfor -%}
    {%- if items -%}
        {{ return(items | join(',\n  ')) }}
    {%- else -%}
        {{ return('/* no columns returned from star() macro */') }}
    {%- endif -%}
{%- endmacro -%}

{%- macro get_filtered_columns_in_relation(from, except=[]) -%}
    {{ return(adapter.dispatch('get_filtered_columns_in_relation', 'dbt_utils')(from, except)) }}
{%- endmacro -%}

{%- macro default__get_filtered_columns_in_relation(from, except) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set left_out = except | map('lower') | list -%}
    {%- set kept = [] -%}
    {%- for column in adapter.get_columns_in_relation(from) -%}
        {%- if column.column | lower not in left_out -%}
            {%- do kept.append(column.column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(kept) }}
{%- endmacro -%}
