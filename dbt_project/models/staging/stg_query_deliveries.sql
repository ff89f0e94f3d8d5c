-- Every raw-zone row, typed, with its provenance: one row per row written to the raw zone,
-- re-deliveries included (stg_queries collapses those).

with kafka_rows as (

    {{ raw_zone_rows('raw_queries') }}

),

landing_rows as (

    {{ raw_zone_rows('landing_queries') }}

),

unioned as (

    -- raw_queries globs every file, so leave the landing files to landing_queries.
    select * from kafka_rows where {{ file_name('filename') }} not like 'landing-%'
    {{ union_all_by_name() }}
    select * from landing_rows

),

renamed as (

    select
        cast(deployment as {{ dbt.type_string() }}) as deployment,
        cast(instance_id as bigint) as instance_id,
        cast(cluster_size as double) as cluster_size,
        cast(user_id as bigint) as user_id,
        cast(database_id as bigint) as database_id,
        cast(query_id as bigint) as query_id,
        cast(arrival_timestamp as timestamp) as arrival_timestamp,
        cast(compile_duration_ms as bigint) as compile_duration_ms,
        cast(queue_duration_ms as bigint) as queue_duration_ms,
        cast(execution_duration_ms as bigint) as execution_duration_ms,
        cast(feature_fingerprint as {{ dbt.type_string() }}) as feature_fingerprint,
        cast(was_aborted as boolean) as was_aborted,
        cast(was_cached as boolean) as was_cached,
        cast(cache_source_query_id as bigint) as cache_source_query_id,
        -- 'SELECT ' and 'select' are the same type.
        lower(trim(cast(query_type as {{ dbt.type_string() }}))) as query_type,
        cast(num_permanent_tables_accessed as bigint) as num_permanent_tables_accessed,
        cast(num_external_tables_accessed as bigint) as num_external_tables_accessed,
        cast(num_system_tables_accessed as bigint) as num_system_tables_accessed,
        cast(read_table_ids as {{ dbt.type_string() }}) as read_table_ids,
        cast(write_table_ids as {{ dbt.type_string() }}) as write_table_ids,
        cast(mbytes_scanned as double) as mbytes_scanned,
        cast(mbytes_spilled as double) as mbytes_spilled,
        cast(num_joins as bigint) as num_joins,
        cast(num_scans as bigint) as num_scans,
        cast(num_aggregations as bigint) as num_aggregations,

        cast(kafka_topic as {{ dbt.type_string() }}) as kafka_topic,
        cast(kafka_partition as integer) as kafka_partition,
        cast(kafka_offset as bigint) as kafka_offset,
        -- Offsets repeat across topic generations (a re-created topic): this keeps them apart.
        case when kafka_offset is not null then {{ raw_file_topic_id('filename') }} end as kafka_topic_id,
        cast(kafka_timestamp as timestamp) as kafka_timestamp,
        cast(kafka_key as {{ dbt.type_string() }}) as kafka_key,
        cast(source_file as {{ dbt.type_string() }}) as source_file,
        cast(source_row as bigint) as source_row,
        cast(batch_id as {{ dbt.type_string() }}) as batch_id,
        cast(ingested_at as timestamp) as ingested_at,
        cast(replay_of as {{ dbt.type_string() }}) as replay_of,
        filename as raw_file,

        date_trunc('hour', cast(arrival_timestamp as timestamp)) as arrival_hour,
        -- The Hive folder, not a function of arrival_timestamp, so that a filter on it skips
        -- whole folders (a test checks it equals the timestamp's date). Last, where Spark puts
        -- the partition column of stg_queries, so both engines list the columns alike.
        cast(arrival_date as date) as arrival_date

    from unioned

)

select * from renamed
