-- Per instance, table and arrival date: how the table was used (the additive counts of
-- table_workload) and the execution time of the queries reading it (tail_concentration's table
-- entities). The all-time marts sum these small rows instead of rescanning every table access.

with access as (

    select * from {{ ref('flattened_table_access') }}
    where {{ partition_window('arrival_date') }}

),

queries as (

    select deployment, instance_id, query_id, coalesce(execution_duration_ms, 0) as execution_ms
    from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

)

select
    access.deployment,
    access.instance_id,
    access.table_id,
    access.arrival_date,
    count(*) filter (where access.query_type = 'select' and access.access = 'read') as selects,
    count(*) filter (where access.query_type in ('update', 'delete') and access.access = 'write') as update_deletes,
    count(*) filter (
        where access.query_type in ({{ sql_list(var('ingest_query_types')) }}) and access.access = 'write'
    ) as ingests,
    count(*) filter (where access.access = 'read') as reads,
    cast(sum(queries.execution_ms) filter (where access.access = 'read') as bigint) as read_execution_ms
from access
join queries
    on access.deployment = queries.deployment
    and access.instance_id = queries.instance_id
    and access.query_id = queries.query_id
group by access.deployment, access.instance_id, access.table_id, access.arrival_date
