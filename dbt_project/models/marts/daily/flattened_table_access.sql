-- One row per (query, table, access): the comma-separated read/write id lists, unnested.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

),

id_lists as (

    -- A token that is not an integer is left out here and reported by the test
    -- table_ids_are_integers; a table listed twice in one list counts once. De-duplicating each
    -- query's own list is enough (clean_queries holds one row per query) and spares a DISTINCT
    -- over every unnested row.
    select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
        {{ integer_table_ids('read_table_ids') }} as read_ids,
        {{ integer_table_ids('write_table_ids') }} as write_ids
    from queries

)

select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
    {{ unnest('read_ids') }} as table_id, 'read' as access
from id_lists
union all
select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
    {{ unnest('write_ids') }} as table_id, 'write' as access
from id_lists
