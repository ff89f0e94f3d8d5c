-- Repetition and cache opportunity over all dates: one row per deployment and one for the whole
-- fleet (deployment 'all'). Read from the per-query rows, so the median gap is exact.

with repeats as (

    select * from {{ ref('query_repeats') }}

),

counts as (

    select
        coalesce(deployment, 'all') as deployment,
        count(distinct (deployment, instance_id)) as instances,
        count(*) as queries,
        count(*) filter (where is_repeat) as repeats,
        count(*) filter (where was_cached) as cache_hits,
        count(*) filter (where is_repeat and not was_cached) as missed_cache_repeats,
        quantile_cont(seconds_since_previous, 0.5) filter (where is_repeat) as median_seconds_between_repeats,
        count(*) filter (where is_cacheable) as cacheable_repeats,
        coalesce(sum(execution_duration_ms) filter (where is_cacheable and not was_cached), 0) / 3600000.0 as saved_exec_hours
    from repeats
    group by grouping sets ((deployment), ())

)

select
    deployment,
    instances,
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
