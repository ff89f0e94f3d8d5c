"""End to end: generated rows -> real Kafka broker -> raw dump -> dbt for every partition.

Besides 5 days of generated rows, a second file brings trouble: 40 queries sent again (duplicate
query_ids), and rows that break each rule the raw dump lets through (it rejects only what cannot
be parsed or typed). The new raw batch goes through the sensor, which asks for the partitions of
every arrival date touched; that run builds them, then the all-time marts are built.

Checks: the raw zone ties out with staging, clean, quarantine and the duplicates removed; the
quarantine holds exactly the injected rows; every board of the leaderboard equals an independent
pandas computation from the raw zone; and the check offsets_have_one_outcome gives each consumed
offset (a few unparseable messages too, which become dead letters) exactly one outcome, and names
the offset once a dead letter claims a clean row's offset as well.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from confluent_kafka import Producer
from dbt_support import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    dbt_paths,
    materialize_dbt,
    query,
    reasons_in_pandas,
    write_dead_letters,
    zones_on_storage,
)

from pipeline_assets import schema
from pipeline_assets.kafka import producer
from pipeline_assets.raw import staging, zone_read
from pipeline_assets.source import generator

pytestmark = [pytest.mark.kafka, pytest.mark.slow(seconds=40)]

ROWS = 6000
DUPLICATES = 40
BROKEN = {  # reason -> how many rows break it
    "negative_duration": 7,
    "arrival_out_of_span": 5,
    "unknown_query_type": 4,
    "cached_without_source": 3,
    "implausible_value: execution_duration_ms": 1,
    "implausible_value: mbytes_scanned": 2,
}
ABORT_RATE_MIN_QUERIES = 100
UNPARSEABLE = [b"{not json", b"[1, 2]", b'{"query_id": 1}']  # -> dead letters


def troublemakers(rows: pa.Table) -> pa.Table:
    """Duplicates of existing queries, and rows breaking the clean step's rules (new query_ids)."""
    records = rows.to_pylist()
    extra = [dict(r) for r in records[100 : 100 + DUPLICATES]]  # sent again, unchanged
    fresh = iter(records[1000:])
    next_id = 10**9

    def broken(**changes) -> dict:
        nonlocal next_id
        next_id += 1
        return dict(next(fresh), query_id=next_id, **changes)

    extra += [broken(execution_duration_ms=-5) for _ in range(BROKEN["negative_duration"])]
    extra += [broken(arrival_timestamp=datetime(2024, 2, 10, 12, i)) for i in range(BROKEN["arrival_out_of_span"])]
    extra += [broken(query_type="merge") for _ in range(BROKEN["unknown_query_type"])]
    extra += [broken(was_cached=True, cache_source_query_id=None) for _ in range(BROKEN["cached_without_source"])]
    extra += [broken(execution_duration_ms=31 * 24 * 3600 * 1000) for _ in range(BROKEN["implausible_value: execution_duration_ms"])]
    extra += [broken(mbytes_scanned=1e30) for _ in range(BROKEN["implausible_value: mbytes_scanned"])]
    extra.sort(key=lambda r: r["arrival_timestamp"])
    return pa.Table.from_pylist(extra, schema=schema.ARROW_SCHEMA)


# --- the independent computation ----------------------------------------------------------------


def clean_in_pandas(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """(clean rows, reasons of the rejected rows), straight from the rules in the issue."""
    staged = raw.drop_duplicates(["kafka_topic", "kafka_partition", "kafka_offset"])
    reason = reasons_in_pandas(staged)
    valid = staged[reason.isna()].sort_values(["ingested_at", "kafka_timestamp", "kafka_partition", "kafka_offset"])
    clean = valid.drop_duplicates(["deployment", "instance_id", "query_id"], keep="first")
    return clean, reason.dropna()


def ranked(frame: pd.DataFrame, board: str, value: str, keys: list[str], within: list[str], top: int | None) -> list[tuple]:
    """Rank by value (largest first), ties by the keys; `within` restarts the ranks."""
    frame = frame.sort_values([*within, value, *keys], ascending=[True] * len(within) + [False] + [True] * len(keys))
    frame = frame.assign(rank=frame.groupby(within).cumcount() + 1)
    if top is not None:
        frame = frame[frame["rank"] <= top]
    return [(board, r["period"], int(r["rank"]), r["entity"], float(r[value])) for _, r in frame.iterrows()]


def boards_in_pandas(clean: pd.DataFrame) -> list[tuple]:
    clean = clean.assign(
        aborted=clean.was_aborted.eq(True),
        instance=clean.deployment + ":" + clean.instance_id.astype(str),
        day=clean.arrival_timestamp.dt.strftime("%Y-%m-%d"),
    )
    periods = pd.concat([clean.assign(period=clean.day), clean.assign(period="all")])
    instance_keys = ["deployment", "instance_id"]
    per_instance = periods.groupby(["period", *instance_keys, "instance"], as_index=False).agg(
        queries=("query_id", "size"),
        aborted=("aborted", "sum"),
        execution_ms=("execution_duration_ms", "sum"),
        spilled=("mbytes_spilled", "sum"),
    )
    per_instance = per_instance.assign(
        entity=per_instance.instance,
        execution_hours=per_instance.execution_ms / 3_600_000,
        abort_rate=per_instance.aborted / per_instance.queries,
    )
    boards = []
    boards += ranked(per_instance, "instances_by_execution_hours", "execution_hours", instance_keys, ["period"], None)
    boards += ranked(per_instance, "instances_by_queries", "queries", instance_keys, ["period"], None)
    boards += ranked(per_instance, "instances_by_spilled_mb", "spilled", instance_keys, ["period"], None)
    enough = per_instance[per_instance.queries >= ABORT_RATE_MIN_QUERIES]
    boards += ranked(enough, "instances_by_abort_rate", "abort_rate", instance_keys, ["period"], None)

    users = periods.dropna(subset=["user_id"]).groupby(["period", *instance_keys, "instance", "user_id"], as_index=False).size()
    users = users.assign(entity="user " + users.user_id.astype(int).astype(str) + " on " + users.instance)
    boards += ranked(users, "top_users_by_queries", "size", ["user_id"], ["period", *instance_keys], 5)

    compiled = periods[periods.compile_duration_ms > 0]
    compiled = compiled.assign(entity="query " + compiled.query_id.astype(str) + " on " + compiled.instance)
    boards += ranked(compiled, "longest_compiles", "compile_duration_ms", [*instance_keys, "query_id"], ["period"], 10)
    return boards


# --- the test -----------------------------------------------------------------------------------


def test_generated_rows_through_kafka_and_dbt(kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch,
                                             zone_storage: str | None):
    from pipeline_assets.kafka.resource import KafkaResource
    from pipeline_assets.orchestration.sensors import build_marts_on_new_raw_batches
    from pipeline_assets.raw.dump.asset import raw_queries
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models
    from pipeline_assets.warehouse.offset_outcomes import offset_outcomes, offsets_have_one_outcome

    paths = dbt_paths(monkeypatch, tmp_path)
    raw_zone, dead_zone = zones_on_storage(monkeypatch, paths, zone_storage)  # [s3]: both on the bucket
    monkeypatch.setenv("REDSET_TOPIC", kafka_topic)
    monkeypatch.setenv("REDSET_CONSUMER_GROUP", f"test-dbt-{uuid.uuid4().hex[:8]}")

    rows = generator.generate(ROWS, seed=11, deployment="both", start=date(2024, 3, 1), days=5)
    extra = troublemakers(rows)
    for name, table in [("generated", rows), ("trouble", extra)]:
        generator.write(table, tmp_path / f"{name}.parquet")
        stats = producer.produce(tmp_path / f"{name}.parquet", kafka_topic, bootstrap=kafka_broker, progress=False)
        assert (stats.rows, stats.errors) == (table.num_rows, 0)
    garbage = Producer({"bootstrap.servers": kafka_broker})
    for value in UNPARSEABLE:
        garbage.produce(kafka_topic, value, b"provisioned:1")
    assert garbage.flush(30) == 0

    with dg.instance_for_test() as instance:
        dump = dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=instance)
        assert dump.success
        tick = build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance))
        # 2024-02-10 (out of span) belongs to the first partition, which touches the data's first day.
        [request] = tick.run_requests
        window = (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
        assert window == ("2024-02-29", "2024-03-05")
        built = materialize_dbt(
            [dbt_daily_models, dbt_all_time_models], partition_range=window, instance=instance,
            checks=[offsets_have_one_outcome],
        )  # fmt: skip
        assert built.success
        checks = {e.check_name: e for e in built.get_asset_check_evaluations()}
        assert checks["staged_rows_tie_out"].passed and all(e.passed for e in checks.values())

    # Every offset: one outcome; the 40 re-sent queries are duplicate deliveries.
    outcomes = {k: v.value for k, v in checks["offsets_have_one_outcome"].metadata.items()}
    assert {k: outcomes[k] for k in ("clean", "quarantined", "duplicate_delivery", "dead_letter")} == {
        "clean": ROWS, "quarantined": sum(BROKEN.values()), "duplicate_delivery": DUPLICATES,
        "dead_letter": len(UNPARSEABLE),
    }  # fmt: skip
    assert (outcomes["no_outcome"], outcomes["more_than_one_outcome"], outcomes["not_yet_built"]) == (0, 0, 0)

    raw = zone_read.read_raw_zone(raw_zone).to_pandas()
    if zone_storage:  # [s3]: everything was uploaded, nothing is left on local disk
        assert not [*paths.raw_dir.rglob("*.parquet"), *(tmp_path / "staging").rglob("*.parquet")]
    assert len(raw) == ROWS + extra.num_rows

    # Tie-out with the raw zone: every raw row is staged (no re-delivery here), and every staged
    # row is clean, quarantined, or a duplicate removed.
    count = lambda sql: query(paths.warehouse, sql)[0][0]  # noqa: E731
    staged, clean, quarantined = (count(f"select count(*) from {t}") for t in ("stg_queries", "clean_queries", "quarantine_queries"))
    assert staged == len(raw)
    assert clean + quarantined + DUPLICATES == staged
    assert quarantined == sum(BROKEN.values())
    assert dict(query(paths.warehouse, "select reason, count(*) from quarantine_queries group by 1")) == BROKEN

    expected_clean, reasons = clean_in_pandas(raw)
    assert reasons.value_counts().to_dict() == BROKEN
    assert clean == len(expected_clean) == ROWS
    assert count("select sum(queries) from query_metrics") == ROWS

    got = query(paths.warehouse, "select board, period, rank, entity, value from leaderboard")
    expected = boards_in_pandas(expected_clean)
    assert len(got) == len(expected)
    key = lambda row: row[:4]  # noqa: E731
    got_by_key = {key(r): r[4] for r in got}
    for row in expected:
        assert key(row) in got_by_key, f"missing from the leaderboard: {row}"
        assert got_by_key[key(row)] == pytest.approx(row[4]), row
    assert {r[0] for r in got} == {
        "instances_by_execution_hours", "instances_by_queries", "instances_by_spilled_mb",
        "instances_by_abort_rate", "top_users_by_queries", "longest_compiles",
    }  # fmt: skip

    # A dead letter for an offset that is also a clean row (of the same topic id): the check names it.
    [(topic_id, partition, offset)] = query(
        paths.warehouse, "select kafka_topic_id, kafka_partition, kafka_offset from clean_queries order by all limit 1")
    assert len(topic_id) == 22  # from the raw file's name
    group = f"{kafka_topic}-t{topic_id}"
    name = f"{group}-p{partition}-o{offset}-{offset}.parquet"
    folder = tmp_path / "extra" if zone_storage else paths.dead_dir
    write_dead_letters(folder, kafka_topic, [offset], name, partition=partition)
    staging.ship(folder, zone_storage and str(dead_zone))  # [s3]: uploaded to the bucket's dead letters
    broken = offset_outcomes(raw_zone, dead_zone, paths.warehouse)
    assert broken.failures == {"clean + dead_letter": (1, [f"{group}:{partition}:{offset}"])}
