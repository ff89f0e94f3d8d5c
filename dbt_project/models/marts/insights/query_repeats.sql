-- One row per clean query: its repetition key (Redbench's), the previous arrival of the same key
-- on the same instance, and whether a result cache could have answered it. A query's row depends
-- on every earlier date (its previous occurrence, its cache source, the writes in between), so a
-- partition run reads all dates and recomputes its window AND every later date; the strategy
-- partition_window_and_keys replaces those rows. Built in date order or not, each date ends up
-- as a full rebuild computes it.
{{ config(
    materialized='incremental',
    incremental_strategy='partition_window_and_keys',
    unique_key=['deployment', 'instance_id', 'query_id'],
    on_schema_change='fail',
    tags=['daily'],
) }}

with read_lists as (

    select deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
        was_cached, cache_source_query_id, execution_duration_ms, feature_fingerprint, num_scans, num_joins,
        {{ integer_table_ids('read_table_ids') }} as read_ids
    from {{ ref('clean_queries') }}

),

queries as (

    select * {{ star_exclude(['feature_fingerprint', 'num_scans', 'num_joins']) }},
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

),

ordered as (

    select keyed.*,
        case when repeat_key is not null then lag(arrival_timestamp) over (
            partition by deployment, instance_id, repeat_key
            order by arrival_timestamp, query_id
        ) end as previous_arrival
    from keyed

),

computed as (

    select * from ordered
    where {{ from_partition_window('arrival_date') }}

),

repeat_reads as (

    -- Selects and cached rows only: a result cache answers reads.
    select deployment, instance_id, query_id, arrival_timestamp, previous_arrival,
        {{ unnest('key_read_ids') }} as table_id
    from computed
    where previous_arrival is not null and (query_type = 'select' or was_cached)

),

writes as (

    select deployment, instance_id, table_id, arrival_timestamp as write_timestamp
    from {{ ref('flattened_table_access') }}
    where access = 'write'

),

last_writes as (

    {{ asof_join('repeat_reads', 'writes', ['deployment', 'instance_id', 'table_id'], 'arrival_timestamp',
        'write_timestamp', 'write_timestamp', 'last_write', 'before', kind='inner') }}

),

overwritten as (

    -- Repeats with a write to one of their read tables strictly between the previous occurrence
    -- and themselves: the last write before the repeat came after the previous occurrence.
    select distinct deployment, instance_id, query_id
    from last_writes
    where last_write > previous_arrival

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
    {{ seconds_between('computed.previous_arrival', 'computed.arrival_timestamp') }} as seconds_since_previous,
    computed.previous_arrival is not null
        and (computed.query_type = 'select' or coalesce(computed.was_cached, false))
        and overwritten.query_id is null as is_cacheable
from computed
left join overwritten using (deployment, instance_id, query_id)
