"""live_mode_job in Dagster: the run's own materializations, daily ones with partition keys, and a
termination (Dagster sends the run's process SIGINT) that ends it after a whole cycle."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from raw_support import use_private_dirs
from test_live_mode import leaderboard_queries, produce_rows

from pipeline_assets import settings
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.job import live_mode_job
from pipeline_assets.source import generator

WAIT_S = 120.0


@pytest.mark.kafka
def test_live_mode_job_yields_its_materializations_and_stops_cleanly_when_terminated(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("REDSET_LIVE_POLL_SECONDS", "0.2")
    monkeypatch.setenv("REDSET_LIVE_TEST_SECONDS", "3600")
    produce_rows(generator.generate(500, seed=9, start=date(2024, 3, 4), days=1),
                 tmp_path / "rows.parquet", kafka_topic, kafka_broker)  # fmt: skip

    def terminate_mid_cycle() -> None:
        """What Dagster's run termination does (dagster_shared.ipc.send_interrupt): SIGINT to the
        process; sent once the first cycle's rows are committed (their dates owed), before its dbt."""
        owed = settings.data_dir() / "live" / "owed.json"
        deadline = time.monotonic() + WAIT_S
        while not owed.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=terminate_mid_cycle, daemon=True).start()
    with dg.DagsterInstance.ephemeral() as instance:
        result = live_mode_job.execute_in_process(instance=instance, resources={"kafka": KafkaResource()},
                                                  raise_on_error=False)  # fmt: skip
        assert not result.success  # an interrupted step, as a terminated run ends
        logs = [e.message or "" for e in instance.all_logs(result.run_id)]
        assert any("SIGINT received, stopping after the current cycle" in m for m in logs)
        assert any("stopped (stop requested) after" in m for m in logs), "the loop should end by itself"
        materialized = {}
        for event in result.get_asset_materialization_events():
            key = event.asset_key.to_user_string()
            materialized.setdefault(key, set()).add(event.partition)
    assert materialized["raw_queries"] == {None}
    assert materialized["clean_queries"] == materialized["query_metrics"] == {"2024-03-04"}
    assert materialized["leaderboard"] == materialized["serving_snapshot"] == {None}
    assert leaderboard_queries(settings.serving_dir()), "the cycle the signal interrupted went on to publish"
    assert not (settings.data_dir() / "live" / "running.json").exists()
