-- Per instance and arrival date: how many queries repeat an earlier one (Redbench's key), how
-- many the result cache answered, and what a cache that answered every safe repeat would have
-- saved. query_repeats recomputes the dates after a partition window too, so this model does the
-- same: the window's dates and every later date are replaced (partition_window_and_keys).
{{ config(
    materialized='incremental',
    incremental_strategy='partition_window_and_keys',
    unique_key=['deployment', 'instance_id', 'arrival_date'],
    on_schema_change='fail',
    tags=['daily'],
) }}

with repeats as (

    select * from {{ ref('query_repeats') }}
    where {{ from_partition_window('arrival_date') }}

),

counts as (

    select
        deployment,
        instance_id,
        arrival_date,
        count(*) as queries,
        count(*) filter (where is_repeat) as repeats,
        count(*) filter (where was_cached) as cache_hits,
        count(*) filter (where is_repeat and not was_cached) as missed_cache_repeats,
        quantile_cont(seconds_since_previous, 0.5) filter (where is_repeat) as median_seconds_between_repeats,
        count(*) filter (where is_cacheable) as cacheable_repeats,
        coalesce(sum(execution_duration_ms) filter (where is_cacheable and not was_cached), 0) / 3600000.0 as saved_exec_hours
    from repeats
    group by deployment, instance_id, arrival_date

)

select
    deployment,
    instance_id,
    arrival_date,
    queries,
    repeats,
    repeats / queries as repeat_share,
    cache_hits,
    cache_hits / queries as cache_hit_rate,
    missed_cache_repeats,
    missed_cache_repeats / nullif(repeats, 0) as missed_cache_share,
    median_seconds_between_repeats,
    cacheable_repeats,
    cast(saved_exec_hours as double) as saved_exec_hours
from counts
