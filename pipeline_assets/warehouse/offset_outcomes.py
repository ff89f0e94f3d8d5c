"""Every consumed Kafka offset has exactly one outcome: the asset check `offsets_have_one_outcome`.

Over all dates, each (topic id, topic, partition, offset) in the raw zone or the dead letters must be
exactly one of
- clean:               its row is in clean_queries;
- quarantined:         its row is in quarantine_queries;
- duplicate_delivery:  its row is staged, is in neither, and clean_queries keeps another delivery
                       of the same query (deployment, instance_id, query_id); or it replays a dead
                       letter (replay_of) that another staged replay already stands for;
- dead_letter:         it is in the dead letters;
- dead_letter_replayed: it is in the dead letters, and `redset dead-letters replay` sent it again:
                       a raw row replays it, or a later dead letter is its next attempt (`replayed`
                       says where each went).
Re-deliveries (the same offset written twice after a crash) count once, as the offset's outcome.
Offsets with none (a row lost on the way) or with two (e.g. a row and a dead letter) fail the check.

Not yet built: dbt reads the raw zone when it builds a date, so a raw file written since its date
was last built has no outcome yet; the sensor has already asked for that date. Such offsets (in a
raw file no staged row comes from, and in no other file dbt read) are counted as not_yet_built, not
as failures, for REDSET_NOT_BUILT_LIMIT_SECONDS (an hour) after their file was written: still unbuilt
after that, they fail the check (a debt nobody is paying). Landing-file rows carry no offset and are
left out; their staged count is reported.

Runs in the `duckdb` pool at the end of build_marts_job (after the daily dbt models and the
serving snapshot, so it never delays the dashboards), reading the warehouse read-only: DuckDB lets no other process open the file while dbt writes it. One pass of set
operations within the checks' DuckDB memory limit: about 20 s for 10M offsets on two cores.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pyarrow as pa

from pipeline_assets import schema, settings
from pipeline_assets.storage import filesystem
from pipeline_assets.warehouse.checks import DUCKDB_CONFIG, add_kafka_views, duckdb_temp_dir
from pipeline_assets.warehouse.dbt_assets import POOL
from pipeline_assets.warehouse.lock import warehouse_writer
from pipeline_assets.warehouse.resource import WarehouseResource, warehouse_resource

# Each outcome is a bit, so that a whole offset's outcomes aggregate as integers (bit_or).
OUTCOME_BITS = {"dead_letter": 1, "clean": 2, "quarantined": 4, "duplicate_delivery": 8, "dead_letter_replayed": 64}
OUTCOMES = ("clean", "quarantined", "duplicate_delivery", "dead_letter", "dead_letter_replayed")
NOT_YET_BUILT = "not_yet_built"
NOT_YET_BUILT_BIT = 16
OVERDUE = "overdue"  # not yet built, in a file older than the limit: a failure
OVERDUE_BIT = 32
NAMED_BITS = {**OUTCOME_BITS, NOT_YET_BUILT: NOT_YET_BUILT_BIT, OVERDUE: OVERDUE_BIT}
EXAMPLES = 5
REPLAYED_LISTED = 100  # replayed letters listed with where they went

# An offset is unique within one topic generation: the topic id (from the file's name, '' before
# topic ids) is part of its key, and of a failure's label ('<topic>-t<id>:<partition>:<offset>').
# Replays name positions as replay_of and `dead-letters replay --offset` do: '<topic>:<partition>:<offset>'.
KEY = "kafka_topic_id, kafka_topic, kafka_partition, kafka_offset"
POSITION = "kafka_topic || ':' || kafka_partition || ':' || kafka_offset"
LABEL = POSITION.replace("kafka_topic ||", "kafka_topic || coalesce('-t' || nullif(kafka_topic_id, ''), '') ||", 1)

# Replays: raw rows and dead letters whose replay_of names a dead letter's first position (`root`).
# A letter is replayed once a raw row replays its root, or a later attempt of its root failed again.
REPLAY_CTES = f"""
replay_rows AS (
    SELECT DISTINCT {KEY}, replay_of FROM raw
    WHERE kafka_offset IS NOT NULL AND replay_of IS NOT NULL
),
attempts AS (
    SELECT {KEY}, replay_of IS NOT NULL AS is_replay, first_written,
           -- replay_of is a POSITION, without the topic id
           coalesce(replay_of, {POSITION}) AS root
    FROM (SELECT {KEY}, any_value(replay_of) AS replay_of,
                 min(ingested_at) AS first_written
          FROM dead WHERE kafka_offset IS NOT NULL GROUP BY ALL)
),
ranked_attempts AS (
    SELECT *, row_number() OVER (PARTITION BY root ORDER BY is_replay DESC, first_written DESC, kafka_partition DESC,
                                 kafka_offset DESC) AS from_last
    FROM attempts
),
replayed_letters AS (
    SELECT {KEY} FROM ranked_attempts
    WHERE from_last > 1 OR root IN (SELECT replay_of FROM replay_rows)
)"""

# One row per (number of outcomes, their bits, consumed or not) with its offsets and a few examples.
# Offsets are KEY; files are compared by their last two path parts
# (arrival_date=.../name), which name a raw file whichever path it was read through. The inputs are
# NOT MATERIALIZED: a CTE read twice is otherwise held in memory whole, which fails at the memory
# limit with millions of offsets; read twice, they stream and spill.
SQL = f"""
WITH raw_rows AS NOT MATERIALIZED (
    SELECT {KEY}, filename FROM raw WHERE kafka_offset IS NOT NULL
),
dead_letters AS NOT MATERIALIZED (
    SELECT DISTINCT {KEY} FROM dead WHERE kafka_offset IS NOT NULL
),
staged AS NOT MATERIALIZED (
    SELECT {KEY}, deployment, instance_id, query_id
    FROM main.stg_queries WHERE kafka_offset IS NOT NULL
),
{REPLAY_CTES.strip()},
-- A raw replay whose root another staged replay stands for: staging kept that one instead.
replay_duplicate AS (
    SELECT {KEY} FROM replay_rows
    ANTI JOIN staged USING ({KEY})
    SEMI JOIN (SELECT DISTINCT replay_of FROM main.stg_queries WHERE replay_of IS NOT NULL) USING (replay_of)
),
clean AS NOT MATERIALIZED (
    SELECT {KEY} FROM main.clean_queries WHERE kafka_offset IS NOT NULL
),
quarantined AS NOT MATERIALIZED (
    SELECT {KEY} FROM main.quarantine_queries WHERE kafka_offset IS NOT NULL
),
duplicate AS (
    SELECT {KEY} FROM staged
    ANTI JOIN clean USING ({KEY})
    ANTI JOIN quarantined USING ({KEY})
    SEMI JOIN main.clean_queries USING (deployment, instance_id, query_id)
    UNION ALL SELECT * FROM replay_duplicate
),
-- dbt has read a file once a staged row comes from it (the kept copy of each offset).
built_files AS (
    SELECT DISTINCT regexp_extract(raw_file, '[^/]+/[^/]+$') AS file
    FROM (SELECT DISTINCT raw_file FROM main.stg_queries WHERE kafka_offset IS NOT NULL)
),
pending AS (
    SELECT {KEY}, bool_or(file IN (SELECT file FROM overdue_files)) AS overdue
    FROM (
        SELECT *, regexp_extract(filename, '[^/]+/[^/]+$') AS file
        FROM raw_rows ANTI JOIN staged USING ({KEY})
        ANTI JOIN replay_duplicate USING ({KEY})
    )
    GROUP BY ALL
    HAVING NOT bool_or(file IN (SELECT file FROM built_files))
),
-- Bit 0 marks a consumed offset (a raw row; a dead letter is consumed too), the others an outcome.
marks AS (
    SELECT {KEY}, 0 AS bit FROM raw_rows
    UNION ALL SELECT *, {OUTCOME_BITS["dead_letter"]} FROM (SELECT * FROM dead_letters EXCEPT ALL SELECT * FROM replayed_letters)
    UNION ALL SELECT *, {OUTCOME_BITS["dead_letter_replayed"]} FROM replayed_letters
    UNION ALL SELECT *, {OUTCOME_BITS["clean"]} FROM clean
    UNION ALL SELECT *, {OUTCOME_BITS["quarantined"]} FROM quarantined
    UNION ALL SELECT *, {OUTCOME_BITS["duplicate_delivery"]} FROM duplicate
    UNION ALL SELECT {KEY},
                     CASE WHEN overdue THEN {OVERDUE_BIT} ELSE {NOT_YET_BUILT_BIT} END FROM pending
),
per_offset AS (
    SELECT {KEY},
           count(*) FILTER (WHERE bit > 0) AS n, bit_or(bit) AS bits,
           bool_or(bit IN (0, {OUTCOME_BITS["dead_letter"]}, {OUTCOME_BITS["dead_letter_replayed"]})) AS consumed
    FROM marks
    GROUP BY ALL
)
SELECT n, bits, consumed, count(*) AS offsets,
       -- Example offsets of the failures only: no string is built for the rest.
       min(CASE WHEN n <> 1 OR NOT consumed OR bits = {OVERDUE_BIT} THEN {LABEL} END,
           {EXAMPLES}) AS examples
FROM per_offset
GROUP BY ALL
"""

# Each replayed letter and where it went: the replay staging kept, else the first in the raw zone,
# else its root's latest attempt (a dead letter again).
REPLAYED_SQL = f"""
WITH {REPLAY_CTES.strip()},
kept AS (
    SELECT replay_of AS root, arg_min({POSITION},
                                      (kafka_partition, kafka_offset)) AS went
    FROM main.stg_queries WHERE replay_of IS NOT NULL GROUP BY ALL
),
landed AS (
    SELECT replay_of AS root, arg_min({POSITION},
                                      (kafka_partition, kafka_offset)) AS went
    FROM replay_rows GROUP BY ALL
),
latest AS (
    SELECT root, {POSITION} AS went FROM ranked_attempts WHERE from_last = 1
)
SELECT {POSITION.replace('kafka_', 'a.kafka_')}, coalesce(kept.went, landed.went, latest.went)
FROM ranked_attempts a
SEMI JOIN replayed_letters USING ({KEY})
LEFT JOIN kept USING (root) LEFT JOIN landed USING (root) LEFT JOIN latest USING (root)
ORDER BY ALL LIMIT {REPLAYED_LISTED}
"""

# Staged landing-file rows (no offset), and raw rows that repeat an offset (re-deliveries).
EXTRA_SQL = f"""
SELECT (SELECT count(*) FROM main.stg_queries WHERE kafka_offset IS NULL),
       (SELECT count(*) - count(DISTINCT ({KEY}))
        FROM raw WHERE kafka_offset IS NOT NULL)
"""


@dataclass
class OffsetOutcomes:
    """Offsets per outcome, and the ones with none or with more than one."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    not_yet_built: int = 0
    # result ('none', 'clean + dead_letter', 'not consumed: clean', ...) -> (offsets, examples)
    failures: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    landing_rows: int = 0
    redelivered_copies: int = 0
    # A replayed dead letter's position -> where its replay went (the first REPLAYED_LISTED).
    replayed: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        if self.passed:
            return f"{sum(self.counts.values()):,} offsets, one outcome each; {self.not_yet_built:,} not yet built"
        return "; ".join(
            f"{n:,} offset(s) with {'no outcome' if result == 'none' else result} (e.g. {', '.join(examples)})"
            for result, (n, examples) in self.failures.items()
        )


def overdue_files(raw_dir: Path | str, limit_seconds: float) -> pa.Table:
    """Raw files (as arrival_date=.../name) written more than `limit_seconds` ago (a folder or s3://)."""
    cutoff = time.time() - limit_seconds
    fs, found = filesystem.published(raw_dir, f"{schema.RAW_PARTITION_COLUMN}=*/*.parquet")
    files = ["/".join(p.rsplit("/", 2)[-2:]) for p in found if fs.modified(p).timestamp() < cutoff]
    return pa.table({"file": pa.array(files, pa.string())})


def offset_outcomes(raw_dir: Path | str, dead_dir: Path | str, warehouse: Path | WarehouseResource) -> OffsetOutcomes:
    """Tie every Kafka offset in the raw zone and the dead letters to its outcome in the warehouse
    (a path, or the code location's read-only `warehouse` resource)."""
    result = OffsetOutcomes()
    limit = settings.not_built_limit_seconds()
    resource = warehouse if isinstance(warehouse, WarehouseResource) else warehouse_resource(warehouse)
    with warehouse_writer("offsets check (offsets_have_one_outcome)", resource.path), resource.get_connection() as con:
        for name, value in {**DUCKDB_CONFIG, "temp_directory": str(duckdb_temp_dir())}.items():
            con.execute(f"SET {name} = '{value}'")
        add_kafka_views(con, raw_dir, dead_dir, raw_filename=True, replays=True)
        con.register("overdue_files", overdue_files(raw_dir, limit))
        rows = con.execute(SQL).fetchall()
        result.landing_rows, result.redelivered_copies = con.execute(EXTRA_SQL).fetchone()
        result.replayed = dict(con.execute(REPLAYED_SQL).fetchall())
    for n, bits, consumed, offsets, examples in rows:
        names = [name for name, bit in NAMED_BITS.items() if bits & bit]
        if n == 1 and consumed and names == [OVERDUE]:
            _add_failure(result, f"{NOT_YET_BUILT} for over {limit:.0f}s", offsets, examples)
        elif n == 1 and consumed:
            [name] = names
            if name == NOT_YET_BUILT:
                result.not_yet_built += offsets
            else:
                result.counts[name] += offsets
        else:
            label = " + ".join(sorted(names)) + (f" ({n} in all)" if n > len(names) else "") if n else "none"
            _add_failure(result, label if consumed else f"not consumed: {label}", offsets, examples)
    return result


def _add_failure(result: OffsetOutcomes, label: str, offsets: int, examples: list[str] | None) -> None:
    count, found = result.failures.get(label, (0, []))
    result.failures[label] = (count + offsets, sorted(found + list(examples or []))[:EXAMPLES])



@dg.asset_check(
    asset=dg.AssetKey("clean_queries"),
    name="offsets_have_one_outcome",
    # After the serving snapshot too, when the run has one: the check never delays the dashboards.
    additional_deps=[dg.AssetKey("stg_queries"), dg.AssetKey("quarantine_queries"), dg.AssetKey("serving_snapshot")],
    # After dbt, never beside it: DuckDB lets no one open the warehouse while dbt writes it.
    pool=POOL,
    blocking=False,
    description="Every Kafka offset in the raw zone or the dead letters, over all dates, has exactly one "
    "outcome: clean, quarantined, duplicate delivery or dead letter (offsets dbt has not read yet aside, "
    "for REDSET_NOT_BUILT_LIMIT_SECONDS after their file was written).",
)
def offsets_have_one_outcome(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    outcomes = offset_outcomes(settings.zone_url("raw"), settings.zone_url("dead_letters"), warehouse)
    failures = outcomes.failures
    return dg.AssetCheckResult(
        passed=outcomes.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=outcomes.describe(),
        metadata={
            **{name: dg.MetadataValue.int(n) for name, n in outcomes.counts.items()},
            NOT_YET_BUILT: dg.MetadataValue.int(outcomes.not_yet_built),
            "no_outcome": dg.MetadataValue.int(failures.get("none", (0, []))[0]),
            "more_than_one_outcome": dg.MetadataValue.int(sum(n for r, (n, _) in failures.items() if " + " in r)),
            "failures": dg.MetadataValue.json({r: {"offsets": n, "examples": e} for r, (n, e) in failures.items()}),
            "landing_rows": dg.MetadataValue.int(outcomes.landing_rows),
            "redelivered_copies": dg.MetadataValue.int(outcomes.redelivered_copies),
            "replayed": dg.MetadataValue.json(dict(list(outcomes.replayed.items())[:EXAMPLES])),
        },
    )
