-- For each select and each table it reads: seconds since the last ingest (insert or copy writing
-- that table) at or before the select's arrival, and until the next ingest after it.
-- Rebuilt whole from flattened_table_access: the next ingest can come any number of days later, so
-- no fixed look-ahead margin would let a daily partition equal a full rebuild.

with access as (

    select * from {{ ref('flattened_table_access') }}

),

selects as (

    select deployment, instance_id, table_id, query_id, arrival_timestamp
    from access
    where query_type = 'select' and access = 'read'

),

ingests as (

    select distinct deployment, instance_id, table_id, arrival_timestamp as ingest_timestamp
    from access
    where query_type in ({{ sql_list(var('ingest_query_types')) }}) and access = 'write'

),

with_last as (

    select selects.*, ingests.ingest_timestamp as last_ingest
    from selects
    asof left join ingests
        on selects.deployment = ingests.deployment
        and selects.instance_id = ingests.instance_id
        and selects.table_id = ingests.table_id
        and selects.arrival_timestamp >= ingests.ingest_timestamp

),

with_next as (

    select with_last.*, ingests.ingest_timestamp as next_ingest
    from with_last
    asof left join ingests
        on with_last.deployment = ingests.deployment
        and with_last.instance_id = ingests.instance_id
        and with_last.table_id = ingests.table_id
        and with_last.arrival_timestamp < ingests.ingest_timestamp

)

select
    deployment,
    instance_id,
    table_id,
    query_id,
    arrival_timestamp,
    epoch(arrival_timestamp - last_ingest) as seconds_since_last_ingest,
    epoch(next_ingest - arrival_timestamp) as seconds_until_next_ingest
from with_next
