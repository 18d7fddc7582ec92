{#- Each field as text, nulls as a marker, joined by '-', hashed with md5. -#}
{% macro generate_surrogate_key(field_list) -%}
{%- set parts = [] -%}
{%- for field in field_list -%}
  {%- do parts.append("coalesce(cast(" ~ field ~ " as VARCHAR), '_dbt_utils_surrogate_key_null_')") -%}
  {%- if not loop.last -%}{%- do parts.append("'-'") -%}{%- endif -%}
{%- endfor -%}
md5(cast({{ parts | join(' || ') }} as VARCHAR))
{%- endmacro %}
