-- For each select and each table it reads: seconds since the last ingest (insert or copy writing
-- that table) at or before the select's arrival, and until the next ingest after it.
-- A view: daily_table_ingest_gaps keeps the rows up to date one partition window at a time (the
-- next ingest can come any number of days later, so it also updates earlier dates' rows), and
-- rebuilding them all after every daily run would redo every asof join.
{{ config(materialized='view') }}

select
    deployment,
    instance_id,
    table_id,
    query_id,
    arrival_timestamp,
    {{ seconds_between('last_ingest', 'arrival_timestamp') }} as seconds_since_last_ingest,
    {{ seconds_between('arrival_timestamp', 'next_ingest') }} as seconds_until_next_ingest
from {{ ref('daily_table_ingest_gaps') }}
