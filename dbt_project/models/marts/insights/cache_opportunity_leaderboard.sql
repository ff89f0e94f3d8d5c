-- Instances ranked by the execution hours a result cache would have saved over all dates (the sum
-- of daily_query_repetition), the largest first; ties ordered by deployment and instance_id.

with totals as (

    select
        deployment,
        instance_id,
        sum(queries) as queries,
        sum(repeats) as repeats,
        sum(cache_hits) as cache_hits,
        sum(missed_cache_repeats) as missed_cache_repeats,
        sum(cacheable_repeats) as cacheable_repeats,
        sum(saved_exec_hours) as saved_exec_hours
    from {{ ref('daily_query_repetition') }}
    group by deployment, instance_id

)

select
    cast(row_number() over (order by saved_exec_hours desc, deployment, instance_id) as integer) as rank,
    deployment,
    instance_id,
    cast(queries as bigint) as queries,
    cast(repeats as bigint) as repeats,
    repeats / queries as repeat_share,
    cache_hits / queries as cache_hit_rate,
    missed_cache_repeats / nullif(repeats, 0) as missed_cache_share,
    cast(cacheable_repeats as bigint) as cacheable_repeats,
    cast(saved_exec_hours as double) as saved_exec_hours
from totals
