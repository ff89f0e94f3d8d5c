-- One row per (query, table, access): the comma-separated read/write id lists, unnested.
-- A token that is not an integer is left out here and reported by the test
-- table_ids_are_integers; a table listed twice in one list counts once. De-duplicating each
-- query's own list is enough (clean_queries holds one row per query) and spares a DISTINCT
-- over every unnested row.
-- Each branch reads clean_queries itself: a CTE read by both would be materialised whole by
-- DuckDB (all rows, id lists included) and spill at scale; two column scans stream instead.

select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
    unnest({{ integer_table_ids('read_table_ids') }}) as table_id, 'read' as access
from {{ ref('clean_queries') }}
where {{ partition_window('arrival_date') }}
union all
select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
    unnest({{ integer_table_ids('write_table_ids') }}) as table_id, 'write' as access
from {{ ref('clean_queries') }}
where {{ partition_window('arrival_date') }}
