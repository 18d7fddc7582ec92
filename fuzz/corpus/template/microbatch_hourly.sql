{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='date_of_business', batch_size='hour', begin='2023-03-01', lookback=2, full_refresh=false) }}
select date_trunc('hour', pickup_datetime) as date_of_business, count(*) as trips
from {{ ref('stg_trips') }}
group by all
