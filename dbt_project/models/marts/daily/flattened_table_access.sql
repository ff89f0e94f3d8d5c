-- One row per (query, table, access): the comma-separated read/write id lists, unnested.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

),

tokens as (

    select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
        'read' as access, unnest({{ table_ids('read_table_ids') }}) as token
    from queries
    union all
    select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
        'write' as access, unnest({{ table_ids('write_table_ids') }}) as token
    from queries

)

-- A token that is not an integer is left out here and reported by the test
-- table_ids_are_integers; a table listed twice in one query counts once.
select distinct
    deployment,
    instance_id,
    query_id,
    arrival_timestamp,
    arrival_date,
    query_type,
    try_cast(token as bigint) as table_id,
    access
from tokens
where try_cast(token as bigint) is not null
