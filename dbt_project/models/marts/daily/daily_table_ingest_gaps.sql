-- For each select and each table it reads, by the select's arrival date: the last ingest (insert
-- or copy writing that table) at or before the select's arrival, and the next ingest after it.
-- Ingests of every date count. So a partition run computes the selects of its window, and also
-- the selects of other dates whose last or next ingest now falls in the window (or did before
-- this run): the strategy partition_window_and_keys replaces those rows by key. The all-time
-- view table_ingest_gaps turns the timestamps into seconds.
{{ config(
    incremental_strategy='partition_window_and_keys',
    unique_key=['deployment', 'instance_id', 'table_id', 'query_id'],
) }}

with access as (

    select * from {{ ref('flattened_table_access') }}

),

selects as (

    select deployment, instance_id, table_id, query_id, arrival_timestamp, arrival_date,
        {{ partition_window('arrival_date') }} as in_window
    from access
    where query_type = 'select' and access = 'read'

),

ingests as (

    select distinct deployment, instance_id, table_id, arrival_timestamp as ingest_timestamp,
        {{ partition_window('arrival_date') }} as in_window
    from access
    where query_type in ({{ sql_list(var('ingest_query_types')) }}) and access = 'write'

),

{% if is_incremental() %}
window_ingests as (

    -- Per table ingested in the window: its first and last ingest there, and the nearest ingests
    -- outside the window before and after them. Dates are contiguous, so no ingest outside the
    -- window falls between the first and the last.
    select
        inside.deployment,
        inside.instance_id,
        inside.table_id,
        min(inside.ingest_timestamp) as first_in_window,
        max(inside.ingest_timestamp) as last_in_window
    from ingests as inside
    where inside.in_window
    group by all

),

bounds as (

    select
        w.deployment,
        w.instance_id,
        w.table_id,
        w.first_in_window,
        w.last_in_window,
        max(outside.ingest_timestamp) filter (where outside.ingest_timestamp < w.first_in_window) as ingest_before,
        min(outside.ingest_timestamp) filter (where outside.ingest_timestamp > w.last_in_window) as ingest_after
    from window_ingests as w
    left join ingests as outside
        on outside.deployment = w.deployment
        and outside.instance_id = w.instance_id
        and outside.table_id = w.table_id
        and not outside.in_window
    group by all

),

reached as (

    -- Selects of other dates whose next ingest (before the window) or last ingest (after it) is
    -- now one of the window's: no ingest outside the window lies between them and the window.
    select s.*
    from selects as s
    join bounds as b
        on s.deployment = b.deployment
        and s.instance_id = b.instance_id
        and s.table_id = b.table_id
    where not s.in_window
      and (
        (s.arrival_timestamp < b.first_in_window
            and (b.ingest_before is null or s.arrival_timestamp >= b.ingest_before))
        or (s.arrival_timestamp > b.last_in_window
            and (b.ingest_after is null or s.arrival_timestamp < b.ingest_after))
      )

),

pointing_into_window as (

    -- Rows of other dates whose last or next ingest was in the window before this run: that
    -- ingest may be gone now. (Without it, added ingests alone are covered by `reached`.)
    select old.deployment, old.instance_id, old.table_id, old.query_id, old.arrival_timestamp, old.arrival_date
    from {{ this }} as old
    where not ({{ partition_window('old.arrival_date') }})
      and (
        {{ partition_window('cast(old.last_ingest as date)') }}
        or {{ partition_window('cast(old.next_ingest as date)') }}
      )

),
{% endif %}

to_compute as (

    select deployment, instance_id, table_id, query_id, arrival_timestamp, arrival_date
    from selects
    where in_window
    {% if is_incremental() %}
    union
    select deployment, instance_id, table_id, query_id, arrival_timestamp, arrival_date from reached
    union
    select * from pointing_into_window
    {% endif %}

),

with_last as (

    {{ asof_join('to_compute', 'ingests', ['deployment', 'instance_id', 'table_id'], 'arrival_timestamp',
        'ingest_timestamp', 'ingest_timestamp', 'last_ingest', 'at_or_before') }}

),

with_next as (

    {{ asof_join('with_last', 'ingests', ['deployment', 'instance_id', 'table_id'], 'arrival_timestamp',
        'ingest_timestamp', 'ingest_timestamp', 'next_ingest', 'after') }}

)

select
    deployment,
    instance_id,
    table_id,
    query_id,
    arrival_timestamp,
    arrival_date,
    last_ingest,
    next_ingest
from with_next
