-- Per instance, arrival date and query type: how much of the work is compilation, and plan shape.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

)

select
    deployment,
    instance_id,
    arrival_date,
    query_type,
    count(*) as queries,
    count(*) filter (where compile_duration_ms > 0) as compiled_queries,
    cast(coalesce(sum(compile_duration_ms), 0) as bigint) as compile_ms_sum,
    avg(compile_duration_ms) as compile_ms_avg,
    {{ quantile_cont('compile_duration_ms', 0.95) }} as compile_ms_p95,
    -- Share of the queries' total time (compile + queue + execution) spent compiling.
    coalesce(sum(compile_duration_ms), 0) / nullif(
        coalesce(sum(compile_duration_ms), 0)
        + coalesce(sum(queue_duration_ms), 0)
        + coalesce(sum(execution_duration_ms), 0),
        0
    ) as compile_share,
    cast(coalesce(sum(num_joins), 0) as bigint) as joins_sum,
    cast(coalesce(sum(num_scans), 0) as bigint) as scans_sum,
    cast(coalesce(sum(num_aggregations), 0) as bigint) as aggregations_sum,
    avg(num_joins) as joins_avg,
    avg(num_scans) as scans_avg,
    avg(num_aggregations) as aggregations_avg
from queries
group by deployment, instance_id, arrival_date, query_type
