-- Raw-zone rows, typed, one per delivery: a message the raw dump wrote twice (a re-delivery after
-- a crash: the same topic, partition and offset, or the same landing file row) is one row here,
-- and so is a dead letter replayed twice.
-- A table, rebuilt one partition window at a time like the daily marts: the raw Parquet is scanned
-- and de-duplicated once per window, and clean_queries, quarantine_queries and the staging tests
-- all read the result instead of each re-scanning the raw zone through a view.
{{ config(materialized='incremental', incremental_strategy='partition_window', on_schema_change='fail') }}

with deliveries as (

    -- The Hive folder filter skips every raw-zone folder outside the window.
    select * from {{ ref('stg_query_deliveries') }}
    where {{ partition_window('arrival_date') }}

),

deduped as (

    -- Kafka rows share (topic, topic id, partition, offset), landing rows share (source_file,
    -- source_row); the other pair is NULL and groups together. kafka_topic_id keeps a re-created
    -- topic's reused offsets apart.
    -- A re-delivery lands in the same arrival_date folder (the date comes from the message), so a
    -- window never splits a delivery's copies. Replays of one dead letter (`redset dead-letters
    -- replay`, run twice) are copies too, whatever their own offsets: they share replay_of.
    select *
    from deliveries
    qualify row_number() over (
        partition by arrival_date, replay_of,
            case when replay_of is null then kafka_topic end,
            case when replay_of is null then kafka_topic_id end,
            case when replay_of is null then kafka_partition end,
            case when replay_of is null then kafka_offset end,
            source_file, source_row
        order by ingested_at, batch_id, raw_file, kafka_partition, kafka_offset
    ) = 1

)

select * from deduped
