{#- One aggregate column per value of `column`: agg(case when column = value then 1 else 0 end),
    named after the value. -#}
{%- macro pivot(column, values, alias=True, agg='sum', cmp='=', prefix='', suffix='', then_value=1, else_value=0, quote_identifiers=True, distinct=False) -%}
    {{ return(adapter.dispatch('pivot', 'dbt_utils')(column, values, alias, agg, cmp, prefix, suffix, then_value, else_value, quote_identifiers, distinct)) }}
{%- endmacro -%}

{%- macro default__pivot(column, values, alias, agg, cmp, prefix, suffix, then_value, else_value, quote_identifiers, distinct) -%}
    {%- for value in values %}
    {{ agg }}({{ 'distinct ' if distinct }}case when {{ column }} {{ cmp }} '{{ dbt.escape_single_quotes(value) }}' then {{ then_value }} else {{ else_value }} end)
    {%- if alias %} as {{ adapter.quote(prefix ~ value ~ suffix) if quote_identifiers else dbt_utils.slugify(prefix ~ value ~ suffix) }}{% endif %}
    {{- ',' if not loop.last }}
    {%- endfor %}
{%- endmacro -%}

{#- A value as a plain lower-case identifier: each run of spaces and dashes becomes one `_`,
    other characters than letters, digits and `_` are dropped, and a leading digit gets a `_`
    before it. -#}
{%- macro slugify(string) -%}
    {%- set slug = namespace(text='', in_gap=false) -%}
    {%- for c in string | lower -%}
        {%- if c in ' -' -%}
            {%- if not slug.in_gap %}{% set slug.text = slug.text ~ '_' %}{% endif -%}
            {%- set slug.in_gap = true -%}
        {%- else -%}
            {%- if c in 'abcdefghijklmnopqrstuvwxyz0123456789_' %}{% set slug.text = slug.text ~ c %}{% endif -%}
            {%- set slug.in_gap = false -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return('_' ~ slug.text if slug.text[:1] in '0123456789' and slug.text else slug.text) -}}
{%- endmacro -%}
