-- Raw-zone rows, typed, one per delivery: a message the raw dump wrote twice (a re-delivery after
-- a crash: the same topic, partition and offset, or the same landing file row) is one row here.

with deliveries as (

    select * from {{ ref('stg_query_deliveries') }}

),

deduped as (

    -- Kafka rows share (topic, partition, offset), landing rows share (source_file, source_row);
    -- the other pair is NULL and groups together. arrival_date leads the partition so that a
    -- filter on it still skips whole raw-zone folders through this window.
    select *
    from deliveries
    qualify row_number() over (
        partition by arrival_date, kafka_topic, kafka_partition, kafka_offset, source_file, source_row
        order by ingested_at, batch_id, raw_file
    ) = 1

)

select * from deduped
