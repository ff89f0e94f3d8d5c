"""The evidence index: the query rows behind each insight, with their Kafka position and raw file.

The dashboards never open the warehouse, so the publish step (snapshot.py) exports this index
into the snapshot as `evidence.parquet`, as it does the quarantine counts. An insight is
- an anomaly tag (workload_anomalies): the instance's queries of the tagged hour;
- a cache-opportunity row (cache_opportunity_leaderboard): the instance's repeats a result cache
  could have answered and did not, whose execution time the row adds up;
- a leaderboard entry in the top BOARD_TOP of its board and period (what the aggregate view
  shows): the instance's (or user's, or the one query's) queries of that period.
Each keeps at most REDSET_EVIDENCE_ROWS rows (settings.BOUNDS), the rows that weigh most in the
insight first (the longest for an execution spike, the most spilled for a heavy spill, ...), and
says how many rows it has in all (`insight_rows`). The Kafka topic, partition and offset come from
clean_queries; the raw file from the staged delivery clean_queries kept (stg_queries).
"""

from __future__ import annotations

EVIDENCE = "evidence"
# The aggregate view's leaderboard shows this many entries per board and period.
BOARD_TOP = 10
NEEDS = ("clean_queries", "stg_queries")  # without these, no evidence at all
PARTS = ("workload_anomalies", "cache_opportunity_leaderboard", "leaderboard")

QUERIES = """queries AS (
    SELECT deployment, instance_id, query_id, user_id, arrival_timestamp, arrival_date, compile_duration_ms,
           execution_duration_ms, queue_duration_ms, mbytes_spilled, was_aborted,
           kafka_topic, kafka_partition, kafka_offset, source_file
    FROM main.clean_queries
)"""

# Each part: one row per (insight, query row), with the insight's date (NULL: all dates) and the
# row's `weight` in it (the heaviest rows are kept).
ANOMALIES = """
    SELECT 'anomaly' AS insight_kind, a.tag || ' at ' || strftime(a.hour, '%Y-%m-%d %H:%M') AS insight_key,
           CAST(a.hour AS DATE) AS insight_date, q.*,
           CAST(CASE a.tag
               WHEN 'exec_spike' THEN q.execution_duration_ms
               WHEN 'heavy_spill' THEN q.mbytes_spilled
               WHEN 'queue_bound' THEN q.queue_duration_ms
               WHEN 'abort_burst' THEN CAST(q.was_aborted AS INTEGER)
               ELSE 0 END AS DOUBLE) AS weight  -- load_surge: every query of the hour counts alike
    FROM main.workload_anomalies AS a
    JOIN queries AS q ON q.deployment = a.deployment AND q.instance_id = a.instance_id
        AND q.arrival_date = CAST(a.hour AS DATE) AND date_trunc('hour', q.arrival_timestamp) = a.hour
"""

# The rows daily_query_repetition's saved_exec_hours adds up (macro repetition_counts).
CACHE = """
    SELECT 'cache_opportunity' AS insight_kind,
           'cache opportunity #' || c.rank || ': repeats a result cache could have answered' AS insight_key,
           CAST(NULL AS DATE) AS insight_date, q.*, CAST(q.execution_duration_ms AS DOUBLE) AS weight
    FROM main.cache_opportunity_leaderboard AS c
    JOIN main.query_repeats AS r ON r.deployment = c.deployment AND r.instance_id = c.instance_id
    JOIN queries AS q ON q.deployment = r.deployment AND q.instance_id = r.instance_id AND q.query_id = r.query_id
    WHERE r.is_cacheable AND NOT r.was_cached
"""

BOARDS = f"""
    SELECT 'leaderboard' AS insight_kind,
           b.board || ' ' || b.period || ' #' || b.position || ': ' || b.entity AS insight_key,
           TRY_CAST(b.period AS DATE) AS insight_date, q.*,
           CAST(CASE b.board
               WHEN 'instances_by_execution_hours' THEN q.execution_duration_ms
               WHEN 'instances_by_spilled_mb' THEN q.mbytes_spilled
               WHEN 'instances_by_abort_rate' THEN CAST(q.was_aborted AS INTEGER)
               WHEN 'longest_compiles' THEN q.compile_duration_ms
               ELSE 0 END AS DOUBLE) AS weight  -- by queries: every query counts alike
    FROM (
        SELECT *, row_number() OVER (PARTITION BY board, period ORDER BY value DESC, rank, entity) AS position
        FROM main.leaderboard
        QUALIFY position <= {BOARD_TOP}
    ) AS b
    JOIN queries AS q ON q.deployment = b.deployment AND q.instance_id = b.instance_id
        AND (b.period = 'all' OR q.arrival_date = TRY_CAST(b.period AS DATE))
        AND (b.user_id IS NULL OR q.user_id = b.user_id)
        AND (b.query_id IS NULL OR q.query_id = b.query_id)
"""

_PART_SQL = {"workload_anomalies": ANOMALIES, "cache_opportunity_leaderboard": CACHE, "leaderboard": BOARDS}
_CACHE_NEEDS = ("query_repeats",)
_INSIGHT = "insight_kind, insight_key, deployment, instance_id"

COLUMNS = (
    "insight_kind", "insight_key", "deployment", "instance_id", "insight_date", "insight_rows", "evidence_rank",
    "query_id", "user_id", "arrival_timestamp", "execution_duration_ms", "queue_duration_ms", "mbytes_spilled",
    "was_aborted", "kafka_topic", "kafka_partition", "kafka_offset", "raw_file", "source_file",
)  # fmt: skip


def parts(existing: set[str]) -> list[str]:
    """The insight marts whose evidence can be published from the tables in `existing`."""
    if not set(NEEDS) <= existing:
        return []
    return [p for p in PARTS if p in existing and (p != "cache_opportunity_leaderboard" or set(_CACHE_NEEDS) <= existing)]


def evidence_sql(existing: set[str], cap: int) -> str | None:
    """The SELECT of the evidence index over the warehouse's tables, or None when none can be made.

    `cap` is an int (settings), never user input; the SQL is fixed here.
    """
    chosen = parts(existing)
    if not chosen:
        return None
    union = "\n    UNION ALL BY NAME\n".join(_PART_SQL[p] for p in chosen)
    # The staged delivery clean_queries kept: the same query at the same position (for a landing
    # row: the same source file); of two copies of it, the earliest, in clean_queries' own order.
    return f"""
        WITH {QUERIES},
        rows AS ({union}),
        ranked AS (
            SELECT *, count(*) OVER (PARTITION BY {_INSIGHT}) AS insight_rows,
                   row_number() OVER (PARTITION BY {_INSIGHT} ORDER BY weight DESC, arrival_timestamp, query_id)
                       AS evidence_rank
            FROM rows
            QUALIFY evidence_rank <= {int(cap)}
        ),
        located AS (
            SELECT r.*, s.raw_file
            FROM ranked AS r
            LEFT JOIN main.stg_queries AS s
                ON s.deployment = r.deployment AND s.instance_id = r.instance_id AND s.query_id = r.query_id
                AND s.arrival_date = r.arrival_date
                AND s.kafka_topic IS NOT DISTINCT FROM r.kafka_topic
                AND s.kafka_partition IS NOT DISTINCT FROM r.kafka_partition
                AND s.kafka_offset IS NOT DISTINCT FROM r.kafka_offset
                AND s.source_file IS NOT DISTINCT FROM r.source_file
            QUALIFY row_number() OVER (
                PARTITION BY r.insight_kind, r.insight_key, r.deployment, r.instance_id, r.evidence_rank
                ORDER BY s.ingested_at, s.kafka_timestamp NULLS LAST, s.raw_file) = 1
        )
        SELECT {", ".join(COLUMNS)} FROM located
        ORDER BY insight_kind, deployment, instance_id, insight_key, evidence_rank
    """
