-- The 10 longest-compiling queries of each arrival date (among those that compiled at all). The
-- all-time top 10 is always among the daily top 10s, so the leaderboard never rescans clean_queries.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}
      and compile_duration_ms > 0

)

select
    deployment,
    instance_id,
    query_id,
    arrival_date,
    compile_duration_ms
from queries
qualify row_number() over (
    partition by arrival_date
    order by compile_duration_ms desc, deployment, instance_id, query_id
) <= 10
