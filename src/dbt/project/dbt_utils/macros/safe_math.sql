{#- Arithmetic that a null or a zero does not turn into null or an error: nulls count as 0 in
    sums and differences, and dividing by 0 gives null. -#}
{%- macro safe_add(field_list) -%}
    {{ return(adapter.dispatch('safe_add', 'dbt_utils')(field_list)) }}
{%- endmacro -%}

{%- macro default__safe_add(field_list) -%}
    {{ return(dbt_utils._coalesced_terms(field_list, '+', 'safe_add')) }}
{%- endmacro -%}

{%- macro safe_subtract(field_list) -%}
    {{ return(adapter.dispatch('safe_subtract', 'dbt_utils')(field_list)) }}
{%- endmacro -%}

{%- macro default__safe_subtract(field_list) -%}
    {{ return(dbt_utils._coalesced_terms(field_list, '-', 'safe_subtract')) }}
{%- endmacro -%}

{#- Each field with a null as 0, joined by `operator`. -#}
{%- macro _coalesced_terms(field_list, operator, caller_name) -%}
    {%- if field_list is string -%}
        {{ exceptions.raise_compiler_error(caller_name ~ " takes one list of fields, e.g. " ~ caller_name ~ "(['a', 'b'])") }}
    {%- endif -%}
    {%- set terms = [] -%}
    {%- for field in field_list %}{% do terms.append('coalesce(' ~ field ~ ', 0)') %}{% endfor -%}
    {{- return(terms | join(' ' ~ operator ~ '\n  ')) -}}
{%- endmacro -%}

{%- macro safe_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('safe_divide', 'dbt_utils')(numerator, denominator)) }}
{%- endmacro -%}

{%- macro default__safe_divide(numerator, denominator) -%}
    ( {{ numerator }} ) / nullif( ( {{ denominator }} ), 0)
{%- endmacro -%}
