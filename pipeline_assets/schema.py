"""The one description of a Redset row.

The generator, the reader, the producer, the raw dump and the dbt sources all use these
definitions. Nothing else in the project lists Redset's columns by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

DEPLOYMENTS = ("provisioned", "serverless")

# Query types the clean step accepts; the paper names ctas, unload, vacuum and analyze too.
QUERY_TYPES = (
    "select",
    "insert",
    "copy",
    "update",
    "delete",
    "ctas",
    "unload",
    "vacuum",
    "analyze",
    "other",
)

# Query types that load data into tables ("ingest") for the table workload.
INGEST_QUERY_TYPES = ("insert", "copy")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool = False
    description: str = ""


TIMESTAMP = pa.timestamp("us")

COLUMNS: tuple[Column, ...] = (
    Column("deployment", pa.string(), True, "provisioned or serverless (added by the reader)"),
    Column("instance_id", pa.int64(), True, "the Redshift cluster or workgroup"),
    Column("cluster_size", pa.float64(), False, "node count; NULL for serverless"),
    Column("user_id", pa.int64(), False, "user, unique within an instance"),
    Column("database_id", pa.int64(), False, "database, unique within an instance"),
    Column("query_id", pa.int64(), True, "query id, unique per (deployment, instance_id)"),
    Column("arrival_timestamp", TIMESTAMP, True, "when the query arrived (no time zone)"),
    Column("compile_duration_ms", pa.int64(), False, "compile time; NULL for cached/other"),
    Column("queue_duration_ms", pa.int64(), False, "time waiting in the queue"),
    Column("execution_duration_ms", pa.int64(), False, "execution time"),
    Column("feature_fingerprint", pa.string(), False, "hash of the query's features: 'same query'"),
    Column("was_aborted", pa.bool_(), False, "the query was aborted"),
    Column("was_cached", pa.bool_(), False, "answered from the result cache"),
    Column("cache_source_query_id", pa.int64(), False, "the query whose result was reused"),
    Column("query_type", pa.string(), True, "select, insert, copy, update, delete, ctas, other, ..."),
    Column("num_permanent_tables_accessed", pa.int64(), False, "permanent tables accessed"),
    Column("num_external_tables_accessed", pa.int64(), False, "external (Spectrum) tables accessed"),
    Column("num_system_tables_accessed", pa.int64(), False, "system tables accessed"),
    Column("read_table_ids", pa.string(), False, "comma-separated ids of tables read"),
    Column("write_table_ids", pa.string(), False, "comma-separated ids of tables written"),
    Column("mbytes_scanned", pa.float64(), False, "MB scanned"),
    Column("mbytes_spilled", pa.float64(), False, "MB spilled to disk"),
    Column("num_joins", pa.int64(), False, "joins in the plan"),
    Column("num_scans", pa.int64(), False, "scans in the plan"),
    Column("num_aggregations", pa.int64(), False, "aggregations in the plan"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}

# Columns of a Redset file as Amazon publishes it: everything but our `deployment`.
SOURCE_COLUMNS: tuple[str, ...] = tuple(n for n in COLUMN_NAMES if n != "deployment")

ARROW_SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in COLUMNS])

# Provenance the raw zone adds to every row (Kafka metadata, or the landing file it came from).
RAW_METADATA_COLUMNS: tuple[Column, ...] = (
    Column("kafka_topic", pa.string(), False, "topic the row was consumed from; NULL for landing files"),
    Column("kafka_partition", pa.int32(), False, "Kafka partition; NULL for landing files"),
    Column("kafka_offset", pa.int64(), False, "Kafka offset; NULL for landing files"),
    Column("kafka_timestamp", TIMESTAMP, False, "Kafka message timestamp (UTC); NULL for landing files"),
    Column("kafka_key", pa.string(), False, "message key, '<deployment>:<instance_id>'"),
    Column("source_file", pa.string(), False, "landing file the row came from; NULL for Kafka rows"),
    Column("source_row", pa.int64(), False, "row number within source_file; NULL for Kafka rows"),
    Column("batch_id", pa.string(), True, "the raw-dump run or landing ingest that wrote the row"),
    Column("ingested_at", TIMESTAMP, True, "when the row was written to the raw zone (UTC)"),
    # Raw files written before replays lack it: readers take a missing column as NULL.
    Column("replay_of", pa.string(), False, "the dead letter a replay re-sent, 'topic:partition:offset'; NULL otherwise"),
)

# The Kafka header `redset dead-letters replay` names the original position with, read into replay_of.
REPLAY_HEADER = "redset.replay.of"

RAW_SCHEMA = pa.schema(
    list(ARROW_SCHEMA) + [pa.field(c.name, c.type, nullable=not c.required) for c in RAW_METADATA_COLUMNS]
)

# Hive partition column of the raw zone, derived from arrival_timestamp.
RAW_PARTITION_COLUMN = "arrival_date"


def message_key(deployment: str, instance_id: int) -> str:
    """Kafka key for a row, so that each instance keeps its order within a partition."""
    return f"{deployment}:{instance_id}"


_ZONED_RE = r"[ T]\d{2}.*(Z|[+-]\d{2}(:?\d{2})?)$"  # an offset after the time of day


def utc_timestamps(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO-8601 strings as TIMESTAMP: "...Z" or "+01:00" is converted to UTC, a value
    without an offset is UTC already. Landing files are typed with it too."""
    try:
        return text.cast(TIMESTAMP)
    except pa.ArrowInvalid:  # offsets: Arrow casts a column with all or none of them
        pass
    zoned = pc.match_substring_regex(text, _ZONED_RE)
    none = pa.scalar(None, text.type)
    utc = pc.if_else(zoned, text, none).cast(pa.timestamp(TIMESTAMP.unit, "UTC")).cast(TIMESTAMP)
    return pc.if_else(zoned, utc, pc.if_else(zoned, none, text).cast(TIMESTAMP))
