-- One row per clean query: its repetition key (Redbench's), the previous arrival of the same key
-- on the same instance, and whether a result cache could have answered it. A query's row depends
-- on every earlier date (its previous occurrence, its cache source, the writes in between), so a
-- partition run reads all dates and recomputes its window AND every later date; the strategy
-- partition_window_and_keys replaces those rows. Built in date order or not, each date ends up
-- as a full rebuild computes it.
-- An incremental run reads only the rows it recomputes: the earlier dates are known from this
-- table as it stands (each key's last arrival before the window) and from the few earlier
-- queries that its cached rows name as source. A new day then costs about a day's rows, not all.
{{ config(
    materialized='incremental',
    incremental_strategy='partition_window_and_keys',
    unique_key=['deployment', 'instance_id', 'query_id'],
    on_schema_change='fail',
    tags=['daily'],
) }}

{%- set incremental = is_incremental() %}

with read_lists as (

    select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
        was_cached, cache_source_query_id, execution_duration_ms, feature_fingerprint, num_scans, num_joins,
        {{ integer_table_ids('read_table_ids') }} as read_ids
    from {{ ref('clean_queries') }} as clean
    {%- if incremental %}
    -- The rows to recompute, and the earlier queries their cached rows take the key of.
    where {{ from_partition_window('clean.arrival_date') }}
        or exists (
            select 1 from {{ ref('clean_queries') }} as cached
            where cached.was_cached
                and {{ from_partition_window('cached.arrival_date') }}
                and cached.deployment = clean.deployment
                and cached.instance_id = clean.instance_id
                and cached.cache_source_query_id = clean.query_id
        )
    {%- endif %}

),

queries as (

    select * exclude (feature_fingerprint, num_scans, num_joins),
        {{ repeat_key('feature_fingerprint', 'num_scans', 'num_joins', 'read_ids') }} as own_key
    from read_lists

),

keyed as (

    -- A cached row has NULL counts: it takes the key (and read tables) of its source query. A
    -- source missing from clean_queries leaves it without a key.
    select queries.*,
        case when queries.was_cached then sources.own_key else queries.own_key end as repeat_key,
        case when queries.was_cached then sources.read_ids else queries.read_ids end as key_read_ids
    from queries
    left join queries as sources
        on queries.was_cached
        and sources.deployment = queries.deployment
        and sources.instance_id = queries.instance_id
        and sources.query_id = queries.cache_source_query_id
    {%- if incremental %}
    where {{ from_partition_window('queries.arrival_date') }}
    {%- endif %}

),

{% if incremental -%}
earlier as (

    -- Each key's last arrival on the dates before the window, as this table holds them: every
    -- one of them comes before every recomputed row.
    select deployment, instance_id, repeat_key, max(arrival_timestamp) as last_arrival
    from {{ this }}
    where repeat_key is not null and not ({{ from_partition_window('arrival_date') }})
    group by deployment, instance_id, repeat_key

),

{% endif -%}
lagged as (

    select keyed.*,
        case when repeat_key is not null then lag(arrival_timestamp) over (
            partition by deployment, instance_id, repeat_key
            order by arrival_timestamp, query_id
        ) end as previous_in_rows
    from keyed

),

ordered as (

    select lagged.*,
        {%- if incremental %}
        coalesce(lagged.previous_in_rows, earlier.last_arrival) as previous_arrival
    from lagged
    left join earlier
        on lagged.deployment = earlier.deployment
        and lagged.instance_id = earlier.instance_id
        and lagged.repeat_key = earlier.repeat_key
        {%- else %}
        lagged.previous_in_rows as previous_arrival
    from lagged
        {%- endif %}

),

computed as (

    select * from ordered
    where {{ from_partition_window('arrival_date') }}

),

repeat_reads as (

    -- Selects and cached rows only: a result cache answers reads.
    select deployment, instance_id, query_id, arrival_timestamp, previous_arrival,
        unnest(key_read_ids) as table_id
    from computed
    where previous_arrival is not null and (query_type = 'select' or was_cached)

),

writes as (

    select deployment, instance_id, table_id, arrival_timestamp as write_timestamp
    from {{ ref('flattened_table_access') }} as access
    where access.access = 'write'
        -- Only a write to a table a repeat reads, after the earliest previous occurrence, can be
        -- the last write before a repeat and after its previous occurrence.
        and access.arrival_timestamp > (select min(previous_arrival) from repeat_reads)
        and exists (
            select 1 from repeat_reads
            where repeat_reads.deployment = access.deployment
                and repeat_reads.instance_id = access.instance_id
                and repeat_reads.table_id = access.table_id
        )

),

overwritten as (

    -- Repeats with a write to one of their read tables strictly between the previous occurrence
    -- and themselves: the last write before the repeat came after the previous occurrence.
    select distinct repeat_reads.deployment, repeat_reads.instance_id, repeat_reads.query_id
    from repeat_reads
    asof join writes
        on repeat_reads.deployment = writes.deployment
        and repeat_reads.instance_id = writes.instance_id
        and repeat_reads.table_id = writes.table_id
        and repeat_reads.arrival_timestamp > writes.write_timestamp
    where writes.write_timestamp > repeat_reads.previous_arrival

)

select
    computed.deployment,
    computed.instance_id,
    computed.query_id,
    computed.arrival_timestamp,
    computed.arrival_date,
    computed.query_type,
    coalesce(computed.was_cached, false) as was_cached,
    computed.execution_duration_ms,
    computed.repeat_key,
    computed.previous_arrival,
    computed.previous_arrival is not null as is_repeat,
    epoch(computed.arrival_timestamp - computed.previous_arrival) as seconds_since_previous,
    computed.previous_arrival is not null
        and (computed.query_type = 'select' or coalesce(computed.was_cached, false))
        and overwritten.query_id is null as is_cacheable
from computed
left join overwritten using (deployment, instance_id, query_id)
