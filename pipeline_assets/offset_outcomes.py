"""Every consumed Kafka offset has exactly one outcome: the asset check `offsets_have_one_outcome`.

Over all dates, each (topic, partition, offset) in the raw zone or the dead letters must be exactly
one of
- clean:               its row is in clean_queries;
- quarantined:         its row is in quarantine_queries;
- duplicate_delivery:  its row is staged, is in neither, and clean_queries keeps another delivery
                       of the same query (deployment, instance_id, query_id);
- dead_letter:         it is in the dead letters.
Re-deliveries (the same offset written twice after a crash) count once, as the offset's outcome.
Offsets with none (a row lost on the way) or with two (e.g. a row and a dead letter) fail the check.

Not yet built: dbt reads the raw zone when it builds a date, so a raw file written since its date
was last built has no outcome yet; the sensor has already asked for that date. Such offsets (in a
raw file no staged row comes from, and in no other file dbt read) are counted as not_yet_built, not
as failures. Landing-file rows carry no offset and are left out; their staged count is reported.

Runs in the `duckdb` pool after the daily dbt models (build_marts_job), reading the warehouse
read-only: DuckDB lets no other process open the file while dbt writes it.
"""

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.checks import DUCKDB_CONFIG, add_kafka_views, duckdb_temp_dir
from pipeline_assets.dbt import POOL
from pipeline_assets.serving.snapshot import open_warehouse

OUTCOMES = ("clean", "quarantined", "duplicate_delivery", "dead_letter")
NOT_YET_BUILT = "not_yet_built"
EXAMPLES = 5

# One row per combination of outcomes found for an offset ("clean", "clean + dead_letter", "none").
# Offsets are compared as (topic, partition, offset); files by their last two path parts
# (arrival_date=.../name), which name a raw file whichever path it was read through.
SQL = f"""
WITH raw_rows AS (
    SELECT kafka_topic, kafka_partition, kafka_offset, regexp_extract(filename, '[^/]+/[^/]+$') AS file
    FROM raw WHERE kafka_offset IS NOT NULL
),
dead_letters AS (
    SELECT DISTINCT kafka_topic, kafka_partition, kafka_offset FROM dead WHERE kafka_offset IS NOT NULL
),
staged AS (
    SELECT kafka_topic, kafka_partition, kafka_offset, deployment, instance_id, query_id,
           regexp_extract(raw_file, '[^/]+/[^/]+$') AS file
    FROM main.stg_queries WHERE kafka_offset IS NOT NULL
),
clean AS (SELECT kafka_topic, kafka_partition, kafka_offset FROM main.clean_queries WHERE kafka_offset IS NOT NULL),
quarantined AS (
    SELECT kafka_topic, kafka_partition, kafka_offset FROM main.quarantine_queries WHERE kafka_offset IS NOT NULL
),
duplicate AS (
    SELECT kafka_topic, kafka_partition, kafka_offset FROM staged
    ANTI JOIN clean USING (kafka_topic, kafka_partition, kafka_offset)
    ANTI JOIN quarantined USING (kafka_topic, kafka_partition, kafka_offset)
    SEMI JOIN main.clean_queries USING (deployment, instance_id, query_id)
),
-- dbt has read a file once a staged row comes from it (the kept copy of each offset).
built_files AS (SELECT DISTINCT file FROM staged),
pending AS (
    SELECT kafka_topic, kafka_partition, kafka_offset
    FROM raw_rows ANTI JOIN staged USING (kafka_topic, kafka_partition, kafka_offset)
    GROUP BY ALL
    HAVING NOT bool_or(file IN (SELECT file FROM built_files))
),
claims AS (
    SELECT *, 'dead_letter' AS outcome FROM dead_letters
    UNION ALL SELECT *, 'clean' FROM clean
    UNION ALL SELECT *, 'quarantined' FROM quarantined
    UNION ALL SELECT *, 'duplicate_delivery' FROM duplicate
    UNION ALL SELECT *, '{NOT_YET_BUILT}' FROM pending
),
consumed AS (
    SELECT kafka_topic, kafka_partition, kafka_offset FROM raw_rows
    UNION SELECT kafka_topic, kafka_partition, kafka_offset FROM dead_letters
),
per_offset AS (
    SELECT kafka_topic, kafka_partition, kafka_offset, bool_or(is_consumed) AS is_consumed,
           string_agg(outcome, ' + ' ORDER BY outcome) AS outcomes
    FROM (
        SELECT *, true AS is_consumed, NULL AS outcome FROM consumed
        UNION ALL SELECT kafka_topic, kafka_partition, kafka_offset, false, outcome FROM claims
    )
    GROUP BY ALL
)
SELECT CASE WHEN NOT is_consumed THEN 'not consumed: ' || outcomes ELSE coalesce(outcomes, 'none') END AS result,
       count(*) AS offsets,
       min(kafka_topic || ':' || kafka_partition || ':' || kafka_offset, {EXAMPLES}) AS examples
FROM per_offset
GROUP BY ALL
ORDER BY result
"""

# Staged landing-file rows (no offset), and raw rows that repeat an offset (re-deliveries).
EXTRA_SQL = """
SELECT (SELECT count(*) FROM main.stg_queries WHERE kafka_offset IS NULL),
       (SELECT count(*) - count(DISTINCT (kafka_topic, kafka_partition, kafka_offset))
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


def offset_outcomes(raw_dir: Path, dead_dir: Path, warehouse: Path) -> OffsetOutcomes:
    """Tie every Kafka offset in the raw zone and the dead letters to its outcome in the warehouse."""
    result = OffsetOutcomes()
    with open_warehouse(warehouse) as con:
        for name, value in {**DUCKDB_CONFIG, "temp_directory": str(duckdb_temp_dir())}.items():
            con.execute(f"SET {name} = '{value}'")
        add_kafka_views(con, raw_dir, dead_dir, raw_filename=True)
        rows = con.execute(SQL).fetchall()
        result.landing_rows, result.redelivered_copies = con.execute(EXTRA_SQL).fetchone()
    for outcome, n, examples in rows:
        if outcome in OUTCOMES:
            result.counts[outcome] = n
        elif outcome == NOT_YET_BUILT:
            result.not_yet_built = n
        else:
            result.failures[outcome] = (n, list(examples))
    return result



@dg.asset_check(
    asset=dg.AssetKey("clean_queries"),
    name="offsets_have_one_outcome",
    additional_deps=[dg.AssetKey("stg_queries"), dg.AssetKey("quarantine_queries")],
    # After dbt, never beside it: DuckDB lets no one open the warehouse while dbt writes it.
    pool=POOL,
    blocking=False,
    description="Every Kafka offset in the raw zone or the dead letters, over all dates, has exactly one "
    "outcome: clean, quarantined, duplicate delivery or dead letter (offsets dbt has not read yet aside).",
)
def offsets_have_one_outcome() -> dg.AssetCheckResult:
    outcomes = offset_outcomes(settings.raw_dir(), settings.dead_letter_dir(), settings.warehouse_path())
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
        },
    )
