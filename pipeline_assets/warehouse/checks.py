"""Asset checks of the raw zone (the dbt models carry their own tests).

- raw_offsets_contiguous: per topic generation (the topic id in the file names: a re-created topic
  reuses offsets) and partition, the Kafka offsets in the raw zone plus the dead letters,
  deduplicated, form one range with no gap, and no offset is both a row and a dead letter.
  Re-deliveries after a crash (the same offset written twice) are expected and only counted.
- raw_rows_match_offsets: the latest raw_queries run wrote exactly one row or one dead letter
  per message it consumed (rows + dead letters = messages consumed).

Both read only the Kafka columns of the Parquet files, with DuckDB.
"""


from pathlib import Path

import dagster as dg
import duckdb

from pipeline_assets import lost_offsets, schema, settings
from pipeline_assets.storage import filesystem, location

RAW_ASSET = dg.AssetKey("raw_queries")
Zone = Path | str  # a folder, or an s3:// URL


# DuckDB spills to disk instead of growing: a check over 10M offsets stays in a few hundred MB.
DUCKDB_CONFIG = {"memory_limit": "256MB", "threads": 2, "preserve_insertion_order": False}
# The views' columns typed, for a folder with no file yet (read_parquet fails on an empty list).
_EMPTY_COLUMNS = "NULL::VARCHAR AS kafka_topic, NULL::INTEGER AS kafka_partition, NULL::BIGINT AS kafka_offset, " \
                 "NULL::VARCHAR AS batch_id, NULL::VARCHAR AS kafka_topic_id"  # fmt: skip
# The topic id in a raw file's or dead letter's name ('' before topic ids), as dbt's raw_file_topic_id.
TOPIC_ID = r"regexp_extract(filename, '-t([A-Za-z0-9_-]{22})-p[0-9]+-o[0-9]+-[0-9]+[.]parquet$', 1) AS kafka_topic_id"


def _connect(raw_dir: Zone, dead_dir: Zone) -> duckdb.DuckDBPyConnection:
    """A connection with two views of the Kafka columns: `raw` (raw zone) and `dead` (dead letters)."""
    con = duckdb.connect(config={**DUCKDB_CONFIG, "temp_directory": str(duckdb_temp_dir())})
    con.execute("SET enable_progress_bar = false")
    add_kafka_views(con, raw_dir, dead_dir)
    return con


def duckdb_temp_dir() -> Path:
    """Where the checks' DuckDB spills."""
    temp = settings.data_dir() / "cache" / "duckdb_tmp"
    temp.mkdir(parents=True, exist_ok=True)
    return temp


def add_kafka_views(con: duckdb.DuckDBPyConnection, raw_dir: Zone, dead_dir: Zone, raw_filename: bool = False,
                    replays: bool = False) -> None:  # fmt: skip
    """Temporary views `raw` and `dead` of the Kafka columns (with kafka_topic_id, from the file's name)
    and batch_id on `con`; `raw_filename` adds the path of each raw row's file to `raw` as `filename`,
    `replays` adds replay_of and ingested_at to both (replay_of NULL in files written before replays)."""
    columns = f"kafka_topic, kafka_partition, kafka_offset, batch_id, {TOPIC_ID}" + (
        ", replay_of, ingested_at" if replays else "")
    for view, (fs, files) in (
        ("raw", filesystem.published(raw_dir, f"{schema.RAW_PARTITION_COLUMN}=*/*.parquet")),
        ("dead", filesystem.published(dead_dir, "*.parquet")),
    ):
        filesystem.register(con, fs)  # a zone on S3
        named = raw_filename and view == "raw"
        # A view cannot take parameters: the file list goes in as a quoted SQL literal.
        listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        if files and replays:
            # By name, with a typed empty side: a column no file has yet reads as NULL.
            source = f"SELECT {columns}{', filename' if named else ''} FROM (SELECT * FROM read_parquet({listed}, " \
                     "hive_partitioning = false, union_by_name = true, filename = true) " \
                     "UNION ALL BY NAME SELECT NULL::VARCHAR AS replay_of WHERE false)"  # fmt: skip
        elif files:
            source = f"SELECT {columns}{', filename' if named else ''} FROM read_parquet({listed}, " \
                     "hive_partitioning = false, filename = true)"  # fmt: skip
        else:
            extra = ", NULL::VARCHAR AS replay_of, NULL::TIMESTAMP AS ingested_at" if replays else ""
            source = f"SELECT {_EMPTY_COLUMNS}{extra}{', NULL::VARCHAR AS filename' if named else ''} WHERE false"
        con.execute(f"CREATE TEMP VIEW {view} AS {source}")


def offset_coverage(raw_dir: Zone, dead_dir: Zone, topic: str) -> list[dict]:
    """Per generation (topic id) and partition: first and last offset, distinct offsets, missing
    ones, re-deliveries, and offsets that are both a row and a dead letter."""
    sql = """
        WITH everything AS (
            SELECT kafka_topic_id, kafka_partition, kafka_offset FROM raw WHERE kafka_topic = $topic
            UNION ALL
            SELECT kafka_topic_id, kafka_partition, kafka_offset FROM dead WHERE kafka_topic = $topic
        ),
        both_ AS (
            SELECT kafka_topic_id, kafka_partition, count(*) AS n
            FROM (SELECT DISTINCT kafka_topic_id, kafka_partition, kafka_offset FROM dead WHERE kafka_topic = $topic) d
            SEMI JOIN (SELECT kafka_topic_id, kafka_partition, kafka_offset FROM raw WHERE kafka_topic = $topic) r
                USING (kafka_topic_id, kafka_partition, kafka_offset)
            GROUP BY ALL
        )
        SELECT e.kafka_topic_id AS topic_id, e.kafka_partition AS partition,
               min(kafka_offset) AS first_offset,
               max(kafka_offset) AS last_offset,
               count(DISTINCT kafka_offset) AS distinct_offsets,
               max(kafka_offset) - min(kafka_offset) + 1 - count(DISTINCT kafka_offset) AS missing_offsets,
               count(*) - count(DISTINCT kafka_offset) AS redelivered,
               coalesce(any_value(b.n), 0) AS row_and_dead_letter
        FROM everything e LEFT JOIN both_ b USING (kafka_topic_id, kafka_partition)
        GROUP BY e.kafka_topic_id, e.kafka_partition ORDER BY topic_id, partition
    """
    with _connect(raw_dir, dead_dir) as con:
        cursor = con.execute(sql, {"topic": topic})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def batch_counts(raw_dir: Zone, dead_dir: Zone, batch_id: str) -> dict[str, int]:
    """Raw rows and dead letters written by one batch (run), and its distinct offsets."""
    sql = """
        WITH mine AS (
            SELECT 'raw' AS source, * FROM raw WHERE batch_id = $batch
            UNION ALL
            SELECT 'dead' AS source, * FROM dead WHERE batch_id = $batch
        )
        SELECT count(*) FILTER (WHERE source = 'raw'), count(*) FILTER (WHERE source = 'dead'),
               count(DISTINCT (kafka_topic_id, kafka_topic, kafka_partition, kafka_offset))
        FROM mine
    """
    with _connect(raw_dir, dead_dir) as con:
        rows, dead, distinct = con.execute(sql, {"batch": batch_id}).fetchone()
    return {"rows": rows, "dead_letters": dead, "distinct_offsets": distinct}


def _generation(coverage: dict) -> str:
    return f" of topic id {coverage['topic_id']}" if coverage["topic_id"] else ""


@dg.asset_check(
    asset=RAW_ASSET,
    name="raw_offsets_contiguous",
    description="Per topic generation (topic id) and partition, raw rows + dead letters (deduplicated) cover "
    "one offset range with no gap "
    "but the offsets Kafka's retention deleted before they were read (lost upstream, alerted once); "
    "no offset is both a row and a dead letter.",
)
def raw_offsets_contiguous() -> dg.AssetCheckResult:
    coverage = offset_coverage(settings.zone_url("raw"), settings.zone_url("dead_letters"), settings.topic())
    for c in coverage:  # retention deleted them before the dump read them: lost upstream, not missing
        lost = lost_offsets.read(location.writer_dir("raw", settings.data_dir()), settings.topic(), c["topic_id"])
        c["lost_upstream"] = lost_offsets.lost_within(lost, c["partition"], c["first_offset"], c["last_offset"])
        c["missing_offsets"] -= c["lost_upstream"]
    bad = [c for c in coverage if c["missing_offsets"] or c["row_and_dead_letter"]]
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "every partition is contiguous"
            if not bad
            else "; ".join(
                f"partition {c['partition']}{_generation(c)}: {c['missing_offsets']} offsets missing between "
                f"{c['first_offset']} and {c['last_offset']}, {c['row_and_dead_letter']} both row and dead letter"
                for c in bad
            )
        ),
        metadata={
            "partitions": dg.MetadataValue.json([{k: v if k == "topic_id" else int(v) for k, v in c.items()}
                                                 for c in coverage]),
            "redelivered_offsets": dg.MetadataValue.int(sum(int(c["redelivered"]) for c in coverage)),
            "lost_upstream_offsets": dg.MetadataValue.int(sum(int(c["lost_upstream"]) for c in coverage)),
        },
    )


@dg.asset_check(
    asset=RAW_ASSET,
    name="raw_rows_match_offsets",
    description="The latest raw_queries run wrote one row or one dead letter per message it consumed.",
)
def raw_rows_match_offsets(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(RAW_ASSET)
    if event is None or event.asset_materialization is None:
        return dg.AssetCheckResult(passed=True, description="raw_queries has not been materialized yet")
    metadata = event.asset_materialization.metadata
    consumed = int(metadata["messages_consumed"].value)
    batch_id = str(metadata["batch_id"].value)
    counts = batch_counts(settings.zone_url("raw"), settings.zone_url("dead_letters"), batch_id)
    found = counts["rows"] + counts["dead_letters"]
    return dg.AssetCheckResult(
        passed=found == consumed and counts["distinct_offsets"] == consumed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"run {batch_id}: {counts['rows']:,} rows + {counts['dead_letters']:,} dead letters "
        f"= {found:,}; messages consumed {consumed:,}",
        metadata={
            "messages_consumed": dg.MetadataValue.int(consumed),
            "rows": dg.MetadataValue.int(counts["rows"]),
            "dead_letters": dg.MetadataValue.int(counts["dead_letters"]),
            "distinct_offsets": dg.MetadataValue.int(counts["distinct_offsets"]),
            "batch_id": dg.MetadataValue.text(batch_id),
        },
    )
