-- Per instance, user and arrival date: the additive totals the leaderboard ranks. Every board,
-- daily or all-time, is computed from these rows, not from clean_queries.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

)

select
    deployment,
    instance_id,
    user_id,
    arrival_date,
    count(*) as queries,
    count(*) filter (where was_aborted) as aborted,
    cast(coalesce(sum(execution_duration_ms), 0) as bigint) as execution_ms,
    coalesce(sum(mbytes_spilled), 0) as mbytes_spilled
from queries
group by deployment, instance_id, user_id, arrival_date
