"""A backfill requested while live mode runs completes without stopping it by hand (#13.2).

`redset live` runs as its own process on the real broker, with no pause between cycles (the
hardest case for a waiting writer) and a producer thread feeding it a batch every moment, so every
cycle builds and publishes under the warehouse's writer lock. Meanwhile this process runs a
partition-range run of the daily dbt assets (two days, one dbt invocation) the way a backfill or
`dagster asset materialize --select 'tag:daily' --partition ...` does. The run gets the lock
between two cycles, builds both days, and live mode goes on cycling afterwards, with no failed
cycle. Real Kafka, real DuckDB, real dbt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dbt_support import materialize_dbt, query
from raw_support import use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka import producer
from pipeline_assets.serving import publishes
from pipeline_assets.source import generator

ROOT = Path(__file__).resolve().parents[1]
REDSET = Path(sys.executable).with_name("redset")
PATIENCE = 1200  # polls of 0.25 s: the test's patience on a busy machine, not an assert on time


def produce(table: pa.Table, path: Path, topic: str, bootstrap: str) -> None:
    generator.write(table, path)
    stats = producer.produce(path, topic, bootstrap=bootstrap, progress=False)
    assert (stats.rows, stats.errors) == (table.num_rows, 0)


def built_cycles(data_dir: Path) -> int:
    """Cycles of live mode that built something (one line each in live/cycles.jsonl)."""
    path = data_dir / "live" / "cycles.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if json.loads(line).get("messages"))


def wait_for(check, what: str, live: subprocess.Popen, log: Path) -> None:
    for _ in range(PATIENCE):
        if check():
            return
        assert live.poll() is None, f"redset live exited ({live.returncode}) before {what}: {log.read_text()[-3000:]}"
        threading.Event().wait(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.kafka
@pytest.mark.slow(seconds=50)
@pytest.mark.timeout(900)  # a writer that never gets the lock would otherwise wait forever
def test_partition_range_backfill_completes_while_live_mode_cycles(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models

    data = tmp_path / "data"
    use_private_dirs(monkeypatch, data, kafka_topic)
    baseline = generator.generate(1_000, seed=3, deployment="both", start=date(2024, 3, 1), days=2)
    produce(baseline, tmp_path / "baseline.parquet", kafka_topic, kafka_broker)
    per_day = {d: n for d, n in zip(*_days(baseline))}

    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home),
        "REDSET_LIVE_POLL_SECONDS": "0",  # straight into the next cycle: the writer must still get in
        "REDSET_LIVE_INSIGHTS_SECONDS": "3600", "REDSET_LIVE_TEST_SECONDS": "3600",
    }  # fmt: skip
    log = tmp_path / "live.log"
    with log.open("w") as out:
        live = subprocess.Popen([str(REDSET), "live"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    feeding, fed = threading.Event(), []

    def feed() -> None:  # a small batch on 2024-03-03 again and again: every cycle has work
        i = 0
        while not feeding.is_set():
            batch = generator.generate(20, seed=100 + i, deployment="serverless", start=date(2024, 3, 3), days=1)
            produce(batch, tmp_path / f"batch-{i % 2}.parquet", kafka_topic, kafka_broker)
            fed.append(batch.num_rows)
            i += 1
            feeding.wait(0.5)

    feeder = threading.Thread(target=feed)
    try:
        wait_for(lambda: (publishes.current_dir(settings.serving_dir()) / "leaderboard.parquet").exists(), "live mode's first publish", live, log)
        feeder.start()
        wait_for(lambda: built_cycles(data) >= 2, "live mode cycling on the fed batches", live, log)

        result = materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", "2024-03-02"))
        assert result.success
        assert {e.partition for e in result.get_asset_materialization_events()} == {"2024-03-01", "2024-03-02"}

        after = built_cycles(data)
        wait_for(lambda: built_cycles(data) >= after + 1, "live mode cycling after the backfill", live, log)
    finally:
        feeding.set()
        if feeder.is_alive():
            feeder.join()
        live.send_signal(signal.SIGTERM)  # a clean stop, as Ctrl-C
        live.wait(timeout=300)

    # Both days built from the baseline's rows; live mode never failed a cycle.
    clean = dict(query(settings.warehouse_path(), "SELECT arrival_date, count(*) FROM clean_queries GROUP BY ALL"))
    held = dict(query(settings.warehouse_path(), "SELECT arrival_date, count(*) FROM quarantine_queries GROUP BY ALL"))
    assert {d: clean.get(d, 0) + held.get(d, 0) for d in per_day} == per_day
    alerts = (data / "alerts.log").read_text() if (data / "alerts.log").exists() else ""
    assert "LIVE CYCLE FAILED" not in alerts, alerts
    assert live.returncode == 0, log.read_text()[-3000:]


def _days(table: pa.Table) -> tuple[list[date], list[int]]:
    counts = pc.value_counts(pc.cast(table.column("arrival_timestamp"), pa.date32()))
    return [c["values"].as_py() for c in counts], [c["counts"].as_py() for c in counts]
