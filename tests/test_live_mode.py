"""Live mode end to end on a real broker: rows produced -> raw zone -> warm dbt -> serving snapshot,
with every materialization in a Dagster instance, daily ones under their partition keys, and the
dbt project parsed once for all cycles. Then a clean stop: SIGTERM to `redset live` mid-backlog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from raw_support import dead_rows, group_offsets, high_watermarks, raw_rows, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka import producer
from pipeline_assets.live.loop import LiveLoop
from pipeline_assets.live.report import report_runless
from pipeline_assets.serving import publishes
from pipeline_assets.serving.snapshot import read_manifest as snapshot_manifest
from pipeline_assets.source import generator
from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models, dbt_project

BASELINE_ROWS = 2_000
MARKER_ROWS = 37
MARKER_INSTANCE = 990_001
WAIT_S = 120.0


def produce_rows(table: pa.Table, path: Path, topic: str, bootstrap: str) -> None:
    generator.write(table, path)
    stats = producer.produce(path, topic, bootstrap=bootstrap, progress=False)
    assert (stats.rows, stats.errors) == (table.num_rows, 0)


def marker(day: date) -> pa.Table:
    """MARKER_ROWS queries of one serverless instance the baseline does not have, on `day`."""
    table = generator.generate(MARKER_ROWS, seed=7, deployment="serverless", start=day, days=1, instances=1)
    index = table.schema.get_field_index("instance_id")
    return table.set_column(index, "instance_id", pa.array([MARKER_INSTANCE] * table.num_rows, pa.int64()))


def leaderboard_queries(serving: Path) -> dict[str, float]:
    """entity -> all-time queries on the published leaderboard ({} before the first publication)."""
    try:
        rows = pq.read_table(publishes.current_dir(serving) / "leaderboard.parquet").to_pylist()
    except FileNotFoundError:
        return {}
    return {r["entity"]: r["value"] for r in rows if r["board"] == "instances_by_queries" and r["period"] == "all"}


def wait_until(condition: Callable[[], bool], what: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert thread.is_alive(), f"live mode ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S:.0f}s"
        time.sleep(0.2)


@pytest.mark.kafka
def test_live_mode_publishes_produced_rows_and_reports_every_materialization(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("REDSET_LIVE_POLL_SECONDS", "0.2")
    monkeypatch.setenv("REDSET_LIVE_INSIGHTS_SECONDS", "3600")  # after the first cycle's
    monkeypatch.setenv("REDSET_LIVE_TEST_SECONDS", "3600")  # the tests' cadence has its own tests
    # Count dbt parses: the function every dbt command without a manifest goes through.
    import dbt.cli.requires as requires

    parses = []
    parse_manifest = requires.parse_manifest
    monkeypatch.setattr(requires, "parse_manifest", lambda *a, **k: parses.append(1) or parse_manifest(*a, **k))

    baseline = generator.generate(BASELINE_ROWS, seed=3, start=date(2024, 3, 1), days=2)
    produce_rows(baseline, tmp_path / "baseline.parquet", kafka_topic, kafka_broker)
    instance = dg.DagsterInstance.ephemeral()
    stop = threading.Event()
    loop = LiveLoop(instance, stop, where="test")
    thread = threading.Thread(target=lambda: [report_runless(instance, events) for events in loop.cycles()])
    thread.start()
    try:
        serving = settings.serving_dir()
        wait_until(lambda: bool(leaderboard_queries(serving)), "baseline on the leaderboard", thread)
        entity = f"serverless:{MARKER_INSTANCE}"
        assert entity not in leaderboard_queries(serving)
        produce_rows(marker(date(2024, 3, 3)), tmp_path / "marker.parquet", kafka_topic, kafka_broker)
        wait_until(lambda: leaderboard_queries(serving).get(entity) == MARKER_ROWS, "marker on the leaderboard", thread)
        # The insights models run in slices between cycles (live/background.py): their first pass ends.
        wait_until(lambda: loop.summary.passes.get("insights", 0) >= 1, "an insights pass", thread)
    finally:
        stop.set()
        thread.join(WAIT_S)
    summary = loop.summary
    assert summary.cycles >= 2 and summary.failed_cycles == 0
    assert len(parses) == 1, f"{len(parses)} dbt parses over {summary.cycles} cycles"

    # raw_queries: every message once, and the committed offsets it reports are the group's.
    raw = instance.fetch_materializations(dg.AssetKey("raw_queries"), limit=100).records
    assert sum(r.asset_materialization.metadata["rows_written"].value for r in raw) == BASELINE_ROWS + MARKER_ROWS
    committed: dict[str, int] = {}
    for record in raw:
        for partition, offset in record.asset_materialization.metadata["committed_offsets"].value.items():
            committed[partition] = max(offset, committed.get(partition, 0))
    group = {str(o.partition): o.committed for o in group_offsets(kafka_broker, kafka_topic, settings.consumer_group())}
    assert committed == {p: c for p, c in group.items() if c}
    assert group == {str(p): h for p, h in high_watermarks(kafka_broker, kafka_topic).items()}

    # Each daily model: exactly the three arrival days, as partitions, but the insights models: their
    # first pass, after the first cycle, took the baseline's days; the marker's day waits for the next.
    insights = insights_models()
    for key in dbt_daily_models.keys:
        if key.path[-1] in insights:
            assert instance.get_materialized_partitions(key) == {"2024-03-01", "2024-03-02"}, key
        else:
            assert instance.get_materialized_partitions(key) == {"2024-03-01", "2024-03-02", "2024-03-03"}, key
    owed = json.loads((settings.data_dir() / "live" / "owed.json").read_text())
    assert owed == {"every_cycle": [], "insights": ["2024-03-03"]}
    for key in dbt_all_time_models.keys:
        assert instance.fetch_materializations(key, limit=1).records, f"{key} never reported"
    snapshot = instance.fetch_materializations(dg.AssetKey("serving_snapshot"), limit=1).records[0]
    manifest = snapshot_manifest(serving)
    assert snapshot.asset_materialization.metadata["published_at"].value == manifest["published_at"]


def insights_models() -> set[str]:
    """The models of models/marts/insights, by the manifest's paths (not by the selector live mode uses)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        n["name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/insights/")
    }
