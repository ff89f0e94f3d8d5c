-- Per instance and hour of arrival: volume, outcomes, latency percentiles, scan and spill, plan
-- shape, and a count per query type.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

)

select
    deployment,
    instance_id,
    date_trunc('hour', arrival_timestamp) as hour,
    arrival_date,
    count(*) as queries,
    count(*) filter (where not coalesce(was_aborted, false)) as successful,
    count(*) filter (where was_aborted) as aborted,
    count(*) filter (where was_cached) as cached,
    {{ quantile_cont('execution_duration_ms', 0.50) }} as exec_p50_ms,
    {{ quantile_cont('execution_duration_ms', 0.95) }} as exec_p95_ms,
    {{ quantile_cont('execution_duration_ms', 0.99) }} as exec_p99_ms,
    avg(queue_duration_ms) as queue_avg_ms,
    {{ quantile_cont('queue_duration_ms', 0.95) }} as queue_p95_ms,
    coalesce(sum(mbytes_scanned), 0) as mbytes_scanned,
    coalesce(sum(mbytes_spilled), 0) as mbytes_spilled,
    count(*) filter (where mbytes_spilled > 0) / count(*) as spill_rate,
    cast(coalesce(sum(num_joins), 0) as bigint) as joins,
    cast(coalesce(sum(num_aggregations), 0) as bigint) as aggregations,
    cast(coalesce(sum(num_scans), 0) as bigint) as scans,
    {%- for query_type in var('query_types') %}
    count(*) filter (where query_type = '{{ query_type }}') as n_{{ query_type }}{{ "," if not loop.last }}
    {%- endfor %}
from queries
group by deployment, instance_id, date_trunc('hour', arrival_timestamp), arrival_date
