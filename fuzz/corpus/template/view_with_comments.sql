{# a view over the staged trips #}
{{ config(materialized='view') }}
select "pickup_datetime", 'it''s' as quoted, 1 / 2 as half -- a comment
from {{ ref("stg_trips") }} /* block */
where payment_type in ('Cash', 'Credit Card') and {{ 1 + 2 * 3 }} > 0
order by all
