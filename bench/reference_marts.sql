-- The dbt marts in one plain DuckDB script: the reference bench/transform.py times dbt against.
--
-- Same inputs (the raw zone's Parquet files), same rules and the same output tables as
-- dbt_project/, written the way one would without dbt: one process, one pass per mart, no
-- incremental logic, no intermediate daily tables (the leaderboard reads clean_queries directly,
-- with GROUPING SETS for the per-day and all-time periods), no tests.
--
-- bench/transform.py fills in the dollar-brace placeholders (string.Template) from settings and
-- pipeline_assets.schema: raw_glob, span_start, span_end, query_types, ingest_query_types,
-- abort_rate_min_queries, the query_metrics per-type counts (type_counts), and from dbt_project.yml's
-- var plausible_bounds the WHEN clauses of the implausible-value rule (implausible_values).

-- Staging: typed raw rows, one per delivery (a re-delivered Kafka offset or landing row once).
CREATE OR REPLACE VIEW stg_queries AS
SELECT
    * EXCLUDE (query_type, filename, arrival_date),
    lower(trim(query_type)) AS query_type,
    filename AS raw_file,
    cast(arrival_date AS date) AS arrival_date,
    date_trunc('hour', arrival_timestamp) AS arrival_hour
FROM read_parquet('${raw_glob}', hive_partitioning = true, union_by_name = true, filename = true)
QUALIFY row_number() OVER (
    PARTITION BY arrival_date, kafka_topic, kafka_partition, kafka_offset, source_file, source_row
    ORDER BY ingested_at, batch_id, filename
) = 1;

-- The first rule a row breaks (NULL: clean), in the same order as dbt's quarantine_reason().
CREATE OR REPLACE MACRO quarantine_reason(deployment, instance_id, query_id, compile_ms, queue_ms, exec_ms,
                                          arrival, query_type, was_cached, cache_source) AS
    CASE
        WHEN deployment IS NULL OR instance_id IS NULL OR query_id IS NULL THEN 'null_key'
        WHEN compile_ms < 0 OR queue_ms < 0 OR exec_ms < 0 THEN 'negative_duration'
        WHEN arrival IS NULL OR arrival < TIMESTAMP '${span_start}' OR arrival >= TIMESTAMP '${span_end}'
            OR arrival > (current_timestamp AT TIME ZONE 'UTC') THEN 'arrival_out_of_span'
        WHEN query_type IS NULL OR query_type NOT IN (${query_types}) THEN 'unknown_query_type'
        WHEN was_cached AND cache_source IS NULL THEN 'cached_without_source'
    END;

-- Then the plausible bounds (dbt var plausible_bounds), one WHEN per column in the var's order:
-- WHEN NOT (<column> BETWEEN <min> AND <max>) THEN 'implausible_value: <column>'.
CREATE OR REPLACE TEMP VIEW checked AS
SELECT *, coalesce(
    quarantine_reason(deployment, instance_id, query_id, compile_duration_ms, queue_duration_ms,
                      execution_duration_ms, arrival_timestamp, query_type, was_cached, cache_source_query_id),
    CASE ${implausible_values} END
) AS reason
FROM stg_queries;

CREATE OR REPLACE TABLE quarantine_queries AS
SELECT * FROM checked WHERE reason IS NOT NULL;

-- One row per query, its earliest delivery.
CREATE OR REPLACE TABLE clean_queries AS
SELECT
    deployment, instance_id, cluster_size, user_id, database_id, query_id, arrival_timestamp,
    compile_duration_ms, queue_duration_ms, execution_duration_ms, feature_fingerprint, was_aborted,
    was_cached, cache_source_query_id, query_type, num_permanent_tables_accessed,
    num_external_tables_accessed, num_system_tables_accessed, read_table_ids, write_table_ids,
    mbytes_scanned, mbytes_spilled, num_joins, num_scans, num_aggregations,
    kafka_topic, kafka_partition, kafka_offset, source_file, arrival_date
FROM checked
WHERE reason IS NULL
QUALIFY row_number() OVER (
    PARTITION BY deployment, instance_id, query_id
    ORDER BY ingested_at, kafka_timestamp NULLS LAST, kafka_topic, kafka_partition, kafka_offset, source_file, source_row
) = 1;

CREATE OR REPLACE TABLE query_metrics AS
SELECT
    deployment, instance_id, date_trunc('hour', arrival_timestamp) AS hour, arrival_date,
    count(*) AS queries,
    count(*) FILTER (WHERE NOT coalesce(was_aborted, false)) AS successful,
    count(*) FILTER (WHERE was_aborted) AS aborted,
    count(*) FILTER (WHERE was_cached) AS cached,
    quantile_cont(execution_duration_ms, 0.50) AS exec_p50_ms,
    quantile_cont(execution_duration_ms, 0.95) AS exec_p95_ms,
    quantile_cont(execution_duration_ms, 0.99) AS exec_p99_ms,
    avg(queue_duration_ms) AS queue_avg_ms,
    quantile_cont(queue_duration_ms, 0.95) AS queue_p95_ms,
    coalesce(sum(mbytes_scanned), 0) AS mbytes_scanned,
    coalesce(sum(mbytes_spilled), 0) AS mbytes_spilled,
    count(*) FILTER (WHERE mbytes_spilled > 0) / count(*) AS spill_rate,
    cast(coalesce(sum(num_joins), 0) AS bigint) AS joins,
    cast(coalesce(sum(num_aggregations), 0) AS bigint) AS aggregations,
    cast(coalesce(sum(num_scans), 0) AS bigint) AS scans,
    ${type_counts}
FROM clean_queries
GROUP BY ALL;

CREATE OR REPLACE TABLE compile_metrics AS
SELECT
    deployment, instance_id, arrival_date, query_type,
    count(*) AS queries,
    count(*) FILTER (WHERE compile_duration_ms > 0) AS compiled_queries,
    cast(coalesce(sum(compile_duration_ms), 0) AS bigint) AS compile_ms_sum,
    avg(compile_duration_ms) AS compile_ms_avg,
    quantile_cont(compile_duration_ms, 0.95) AS compile_ms_p95,
    coalesce(sum(compile_duration_ms), 0) / nullif(
        coalesce(sum(compile_duration_ms), 0) + coalesce(sum(queue_duration_ms), 0)
        + coalesce(sum(execution_duration_ms), 0), 0) AS compile_share,
    cast(coalesce(sum(num_joins), 0) AS bigint) AS joins_sum,
    cast(coalesce(sum(num_scans), 0) AS bigint) AS scans_sum,
    cast(coalesce(sum(num_aggregations), 0) AS bigint) AS aggregations_sum,
    avg(num_joins) AS joins_avg,
    avg(num_scans) AS scans_avg,
    avg(num_aggregations) AS aggregations_avg
FROM clean_queries
GROUP BY ALL;

CREATE OR REPLACE TABLE leaderboard AS
WITH user_periods AS (
    SELECT
        deployment, instance_id, user_id,
        CASE WHEN grouping(arrival_date) = 1 THEN 'all' ELSE strftime(arrival_date, '%Y-%m-%d') END AS period,
        count(*) AS queries,
        count(*) FILTER (WHERE was_aborted) AS aborted,
        coalesce(sum(execution_duration_ms), 0) AS execution_ms,
        coalesce(sum(mbytes_spilled), 0) AS mbytes_spilled
    FROM clean_queries
    GROUP BY GROUPING SETS ((deployment, instance_id, user_id, arrival_date), (deployment, instance_id, user_id))
),
instance_periods AS (
    SELECT deployment, instance_id, period, sum(queries) AS queries, sum(aborted) AS aborted,
        sum(execution_ms) AS execution_ms, sum(mbytes_spilled) AS mbytes_spilled
    FROM user_periods
    GROUP BY ALL
),
instance_values AS (
    SELECT 'instances_by_execution_hours' AS board, period, deployment, instance_id, execution_ms / 3600000.0 AS value
    FROM instance_periods
    UNION ALL SELECT 'instances_by_queries', period, deployment, instance_id, queries FROM instance_periods
    UNION ALL SELECT 'instances_by_spilled_mb', period, deployment, instance_id, mbytes_spilled FROM instance_periods
    UNION ALL SELECT 'instances_by_abort_rate', period, deployment, instance_id, aborted / queries
    FROM instance_periods WHERE queries >= ${abort_rate_min_queries}
),
compiles AS (
    SELECT strftime(arrival_date, '%Y-%m-%d') AS period, deployment, instance_id, query_id, compile_duration_ms
    FROM clean_queries WHERE compile_duration_ms > 0
    UNION ALL
    SELECT 'all', deployment, instance_id, query_id, compile_duration_ms
    FROM clean_queries WHERE compile_duration_ms > 0
)
SELECT board, period, cast(rank AS integer) AS rank, entity, cast(value AS double) AS value,
    deployment, instance_id, user_id, query_id
FROM (
    SELECT board, period,
        dense_rank() OVER (PARTITION BY board, period ORDER BY value DESC, deployment, instance_id) AS rank,
        deployment || ':' || instance_id AS entity, value, deployment, instance_id,
        cast(NULL AS bigint) AS user_id, cast(NULL AS bigint) AS query_id
    FROM instance_values
    UNION ALL
    SELECT * FROM (
        SELECT 'top_users_by_queries', period,
            dense_rank() OVER (PARTITION BY period, deployment, instance_id ORDER BY queries DESC, user_id) AS rank,
            'user ' || user_id || ' on ' || deployment || ':' || instance_id, queries, deployment, instance_id,
            user_id, cast(NULL AS bigint)
        FROM user_periods WHERE user_id IS NOT NULL
    ) WHERE rank <= 5
    UNION ALL
    SELECT * FROM (
        SELECT 'longest_compiles', period,
            dense_rank() OVER (PARTITION BY period ORDER BY compile_duration_ms DESC, deployment, instance_id, query_id) AS rank,
            'query ' || query_id || ' on ' || deployment || ':' || instance_id, compile_duration_ms, deployment,
            instance_id, cast(NULL AS bigint), query_id
        FROM compiles
    ) WHERE rank <= 10
);

-- One row per (query, table, access); a table listed twice in one query counts once.
CREATE OR REPLACE TABLE flattened_table_access AS
WITH tokens AS (
    SELECT deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type, 'read' AS access,
        unnest(string_split(coalesce(read_table_ids, ''), ',')) AS token
    FROM clean_queries
    UNION ALL
    SELECT deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type, 'write',
        unnest(string_split(coalesce(write_table_ids, ''), ','))
    FROM clean_queries
)
SELECT DISTINCT deployment, instance_id, query_id, arrival_timestamp, arrival_date, query_type,
    try_cast(trim(token) AS bigint) AS table_id, access
FROM tokens
WHERE try_cast(trim(token) AS bigint) IS NOT NULL;

CREATE OR REPLACE TABLE table_ingest_gaps AS
WITH selects AS (
    SELECT deployment, instance_id, table_id, query_id, arrival_timestamp
    FROM flattened_table_access WHERE query_type = 'select' AND access = 'read'
),
ingests AS (
    SELECT DISTINCT deployment, instance_id, table_id, arrival_timestamp AS ingest_timestamp
    FROM flattened_table_access WHERE query_type IN (${ingest_query_types}) AND access = 'write'
),
with_last AS (
    SELECT s.*, i.ingest_timestamp AS last_ingest
    FROM selects s ASOF LEFT JOIN ingests i
        ON s.deployment = i.deployment AND s.instance_id = i.instance_id AND s.table_id = i.table_id
        AND s.arrival_timestamp >= i.ingest_timestamp
),
with_next AS (
    SELECT w.*, i.ingest_timestamp AS next_ingest
    FROM with_last w ASOF LEFT JOIN ingests i
        ON w.deployment = i.deployment AND w.instance_id = i.instance_id AND w.table_id = i.table_id
        AND w.arrival_timestamp < i.ingest_timestamp
)
SELECT deployment, instance_id, table_id, query_id, arrival_timestamp,
    epoch(arrival_timestamp - last_ingest) AS seconds_since_last_ingest,
    epoch(next_ingest - arrival_timestamp) AS seconds_until_next_ingest
FROM with_next;

CREATE OR REPLACE TABLE table_workload AS
WITH counts AS (
    SELECT deployment, instance_id, table_id,
        count(*) FILTER (WHERE query_type = 'select' AND access = 'read') AS selects,
        count(*) FILTER (WHERE query_type IN ('update', 'delete') AND access = 'write') AS update_deletes,
        count(*) FILTER (WHERE query_type IN (${ingest_query_types}) AND access = 'write') AS ingests
    FROM flattened_table_access
    GROUP BY ALL
),
staleness AS (
    SELECT deployment, instance_id, table_id,
        avg(seconds_since_last_ingest) AS avg_s_since_last_ingest,
        median(seconds_since_last_ingest) AS median_s_since_last_ingest,
        avg(seconds_until_next_ingest) AS avg_s_until_next_ingest,
        median(seconds_until_next_ingest) AS median_s_until_next_ingest
    FROM table_ingest_gaps
    GROUP BY ALL
)
SELECT c.deployment, c.instance_id, c.table_id, c.selects, c.update_deletes, c.ingests,
    c.selects / nullif(c.selects + c.update_deletes, 0) AS select_share,
    coalesce(c.selects / nullif(c.selects + c.update_deletes, 0) > 0.8, false) AS analytical,
    s.avg_s_since_last_ingest, s.median_s_since_last_ingest, s.avg_s_until_next_ingest, s.median_s_until_next_ingest
FROM counts c
LEFT JOIN staleness s USING (deployment, instance_id, table_id);

-- Per instance and minute: trailing 15-minute against trailing 24-hour average execution time.
CREATE OR REPLACE TABLE stress_index AS
WITH minutes AS (
    SELECT deployment, instance_id, date_trunc('minute', arrival_timestamp) AS minute, count(*) AS queries,
        sum(execution_duration_ms) AS execution_ms, count(execution_duration_ms) AS executions,
        coalesce(sum(mbytes_spilled), 0) AS mbytes_spilled
    FROM clean_queries
    GROUP BY ALL
),
windowed AS (
    SELECT deployment, instance_id, minute, cast(minute AS date) AS arrival_date, queries,
        sum(execution_ms) OVER last_15m / nullif(sum(executions) OVER last_15m, 0) AS avg_exec_15m_ms,
        sum(execution_ms) OVER last_24h / nullif(sum(executions) OVER last_24h, 0) AS avg_exec_24h_ms,
        sum(mbytes_spilled) OVER last_15m AS spilled_mb_15m
    FROM minutes
    WINDOW
        last_15m AS (PARTITION BY deployment, instance_id ORDER BY minute
                     RANGE BETWEEN INTERVAL 14 MINUTES PRECEDING AND CURRENT ROW),
        last_24h AS (PARTITION BY deployment, instance_id ORDER BY minute
                     RANGE BETWEEN INTERVAL 1439 MINUTES PRECEDING AND CURRENT ROW)
)
SELECT deployment, instance_id, minute, arrival_date, queries, avg_exec_15m_ms, avg_exec_24h_ms,
    avg_exec_15m_ms / nullif(avg_exec_24h_ms, 0) AS stress_index, spilled_mb_15m
FROM windowed;

-- Repetition (Redbench's key: fingerprint, scans, joins, sorted distinct read tables; a cached
-- row takes its source's), per query, then per day, fleet-wide and as a board.
CREATE OR REPLACE TEMP TABLE query_repeats AS
WITH q AS (
    SELECT *, list_sort(list_distinct(list_filter(
            list_transform(string_split(coalesce(read_table_ids, ''), ','), lambda x: try_cast(trim(x) AS bigint)),
            lambda x: x IS NOT NULL))) AS reads
    FROM clean_queries
),
k AS (
    SELECT q.deployment, q.instance_id, q.query_id, q.arrival_timestamp, q.arrival_date, q.query_type,
        coalesce(q.was_cached, false) AS was_cached, q.execution_duration_ms,
        CASE WHEN q.was_cached THEN s.feature_fingerprint ELSE q.feature_fingerprint END AS fp,
        CASE WHEN q.was_cached THEN [s.num_scans, s.num_joins] ELSE [q.num_scans, q.num_joins] END AS counts,
        CASE WHEN q.was_cached THEN s.reads ELSE q.reads END AS key_reads
    FROM q LEFT JOIN q AS s
        ON q.was_cached AND s.deployment = q.deployment AND s.instance_id = q.instance_id
        AND s.query_id = q.cache_source_query_id
),
p AS (
    SELECT *, CASE WHEN fp IS NOT NULL THEN lag(arrival_timestamp) OVER (
            PARTITION BY deployment, instance_id, fp, counts, key_reads ORDER BY arrival_timestamp, query_id) END AS prev
    FROM k
),
reads AS (
    SELECT deployment, instance_id, query_id, arrival_timestamp, prev, unnest(key_reads) AS table_id
    FROM p WHERE prev IS NOT NULL AND (query_type = 'select' OR was_cached)
),
writes AS (
    SELECT deployment, instance_id, table_id, arrival_timestamp AS write_timestamp
    FROM flattened_table_access WHERE access = 'write'
),
dirty AS (
    SELECT DISTINCT r.deployment, r.instance_id, r.query_id
    FROM reads r ASOF JOIN writes w
        ON r.deployment = w.deployment AND r.instance_id = w.instance_id AND r.table_id = w.table_id
        AND r.arrival_timestamp > w.write_timestamp
    WHERE w.write_timestamp > r.prev
)
SELECT p.*, prev IS NOT NULL AS is_repeat, epoch(arrival_timestamp - prev) AS gap,
    prev IS NOT NULL AND (query_type = 'select' OR was_cached) AND d.query_id IS NULL AS cacheable
FROM p LEFT JOIN dirty d USING (deployment, instance_id, query_id);

CREATE OR REPLACE TABLE daily_query_repetition AS
SELECT deployment, instance_id, arrival_date, count(*) AS queries,
    count(*) FILTER (WHERE is_repeat) AS repeats,
    count(*) FILTER (WHERE is_repeat) / count(*) AS repeat_share,
    count(*) FILTER (WHERE was_cached) AS cache_hits,
    count(*) FILTER (WHERE was_cached) / count(*) AS cache_hit_rate,
    count(*) FILTER (WHERE is_repeat AND NOT was_cached) AS missed_cache_repeats,
    count(*) FILTER (WHERE is_repeat AND NOT was_cached) / nullif(count(*) FILTER (WHERE is_repeat), 0) AS missed_cache_share,
    median(gap) AS median_seconds_between_repeats,
    count(*) FILTER (WHERE cacheable) AS cacheable_repeats,
    coalesce(sum(execution_duration_ms) FILTER (WHERE cacheable AND NOT was_cached), 0) / 3600000.0 AS saved_exec_hours
FROM query_repeats GROUP BY ALL;

CREATE OR REPLACE TABLE fleet_query_repetition AS
WITH rows AS (
    SELECT *, deployment AS grp FROM query_repeats
    UNION ALL
    SELECT *, 'all' FROM query_repeats
)
SELECT grp AS deployment, count(DISTINCT (deployment, instance_id)) AS instances, count(*) AS queries,
    count(*) FILTER (WHERE is_repeat) AS repeats,
    count(*) FILTER (WHERE is_repeat) / count(*) AS repeat_share,
    count(*) FILTER (WHERE was_cached) AS cache_hits,
    count(*) FILTER (WHERE was_cached) / count(*) AS cache_hit_rate,
    count(*) FILTER (WHERE is_repeat AND NOT was_cached) AS missed_cache_repeats,
    count(*) FILTER (WHERE is_repeat AND NOT was_cached) / nullif(count(*) FILTER (WHERE is_repeat), 0) AS missed_cache_share,
    median(gap) AS median_seconds_between_repeats,
    count(*) FILTER (WHERE cacheable) AS cacheable_repeats,
    coalesce(sum(execution_duration_ms) FILTER (WHERE cacheable AND NOT was_cached), 0) / 3600000.0 AS saved_exec_hours
FROM rows GROUP BY grp;

CREATE OR REPLACE TABLE cache_opportunity_leaderboard AS
WITH t AS (
    SELECT deployment, instance_id, sum(queries) AS queries, sum(repeats) AS repeats, sum(cache_hits) AS hits,
        sum(missed_cache_repeats) AS missed, sum(cacheable_repeats) AS cacheable, sum(saved_exec_hours) AS hours
    FROM daily_query_repetition GROUP BY ALL
)
SELECT CAST(row_number() OVER (ORDER BY hours DESC, deployment, instance_id) AS integer) AS rank,
    deployment, instance_id, CAST(queries AS bigint) AS queries, CAST(repeats AS bigint) AS repeats,
    repeats / queries AS repeat_share, hits / queries AS cache_hit_rate, missed / nullif(repeats, 0) AS missed_cache_share,
    CAST(cacheable AS bigint) AS cacheable_repeats, hours AS saved_exec_hours
FROM t;
