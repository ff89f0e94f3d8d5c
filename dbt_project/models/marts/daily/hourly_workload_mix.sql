-- Per instance, hour of arrival, query type and scan-size bucket: queries and their queue and
-- execution time. weekly_workload_drift (the weekly mixes) and workload_anomalies (the hourly
-- queue share) sum these rows instead of rescanning clean_queries.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

)

select
    deployment,
    instance_id,
    date_trunc('hour', arrival_timestamp) as hour,
    arrival_date,
    query_type,
    {{ scan_size_bucket('mbytes_scanned') }} as scan_bucket,
    count(*) as queries,
    cast(sum(queue_duration_ms) as bigint) as queue_ms,
    cast(sum(execution_duration_ms) as bigint) as execution_ms
from queries
group by all
