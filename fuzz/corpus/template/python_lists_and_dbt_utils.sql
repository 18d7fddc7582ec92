{%- set cols = ['a', 'b'] -%}
{%- set seen = {} -%}
{%- for c in cols %}{% do seen.update({c.upper(): [loop.index]}) %}{% do seen[c.upper()].append(c) %}{% endfor -%}
{%- do cols.extend(seen.keys() | list) -%}
select {{ cols | join(', ') }}, {{ dbt_utils.safe_add(['x', 'y']) }} as s,
    {{ dbt_utils.generate_surrogate_key(['x']) }} as k, {{ dbt_utils.star(ref('stg_trips')) }}
from {{ ref('stg_trips') }}
