{#- A key hashed from several columns: each as text, a null as a marker that no value spells,
    joined by '-' so that ('a-', 'b') and ('a', '-b') differ. -#}
{%- macro generate_surrogate_key(field_list) -%}
    {{ return(adapter.dispatch('generate_surrogate_key', 'dbt_utils')(field_list)) }}
{%- endmacro -%}

{%- macro default__generate_surrogate_key(field_list) -%}
    {%- set parts = [] -%}
    {%- for field in field_list -%}
        {%- do parts.append("coalesce(cast(" ~ field ~ " as VARCHAR), '_dbt_utils_surrogate_key_null_')") -%}
    {%- endfor -%}
    md5(cast({{ parts | join(" || '-' || ") }} as VARCHAR))
{%- endmacro -%}
