"""A clean stop of live mode: SIGTERM to `redset live` while it works off a backlog.

The process finishes the cycle in progress and exits 0: every committed offset has its row (or
dead letter) durable in the raw zone and no row is durable beyond them, no temporary file is left
anywhere in the data folder, the dates it consumed are built and published, and the Dagster
instance it reports to holds exactly the committed rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from raw_support import dead_rows, group_offsets, raw_rows, use_private_dirs
from test_live_mode import produce_rows

from pipeline_assets import settings
from pipeline_assets.serving.snapshot import read_manifest
from pipeline_assets.source import generator

BACKLOG_ROWS = 30_000
PER_CYCLE = 5_000
WAIT_S = 180.0


def cycles_done(data_dir: Path) -> int:
    """Cycles logged so far (a background slice's line, with "slice", is no cycle)."""
    path = data_dir / "live" / "cycles.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(1 for line in lines if "slice" not in json.loads(line))


@pytest.mark.kafka
def test_sigterm_mid_backlog_finishes_the_cycle_and_leaves_nothing_half_done(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    group = use_private_dirs(monkeypatch, data_dir, kafka_topic)
    produce_rows(generator.generate(BACKLOG_ROWS, seed=5, start=date(2024, 3, 1), days=3),
                 tmp_path / "backlog.parquet", kafka_topic, kafka_broker)  # fmt: skip
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    env = {
        **os.environ,
        "REDSET_LIVE_MAX_MESSAGES": str(PER_CYCLE),
        "REDSET_LIVE_POLL_SECONDS": "0.1",
        "REDSET_LIVE_INSIGHTS_SECONDS": "3600",
        "REDSET_LIVE_TEST_SECONDS": "3600",
    }
    log = tmp_path / "live.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline_assets.cli", "live"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT_S
        while cycles_done(data_dir) < 1:
            assert proc.poll() is None, f"redset live exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no cycle within {WAIT_S:.0f}s:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text()
    assert "SIGTERM received, stopping after the current cycle" in output, output[-3000:]

    # Committed offsets == durable messages, per partition: nothing lost, nothing beyond the commit.
    committed = {o.partition: o.committed or 0 for o in group_offsets(kafka_broker, kafka_topic, group)}
    assert 0 < sum(committed.values()) < BACKLOG_ROWS, "the stop should land mid-backlog"
    columns = ["kafka_partition", "kafka_offset"]
    durable = pa.concat_tables([raw_rows(columns), dead_rows(columns).cast(raw_rows(columns).schema)])
    pairs = list(zip(*durable.to_pydict().values()))
    for partition, offset in committed.items():
        mine = sorted({o for p, o in pairs if p == partition})
        assert mine == list(range(offset)), f"partition {partition}: committed {offset}, durable {len(mine)}"
    assert [p for p in data_dir.rglob("*") if p.name.endswith(".tmp")] == []

    # The last cycle was whole: its dates built and published, and every committed row reported.
    owed = json.loads((data_dir / "live" / "owed.json").read_text())
    assert owed["every_cycle"] == []
    lines = [json.loads(line) for line in (data_dir / "live" / "cycles.jsonl").read_text().splitlines()]
    last = [line for line in lines if "slice" not in line][-1]
    assert last["published_at"] is not None, "the last cycle did not publish"
    # A background slice may have published after it (an insights pass's end): the newest publish is served.
    newest = [line["published_at"] for line in lines if line["published_at"]][-1]
    assert newest == read_manifest(settings.serving_dir())["published_at"]
    assert not (data_dir / "live" / "running.json").exists()
    with dg.DagsterInstance.get() as instance:
        raw = instance.fetch_materializations(dg.AssetKey("raw_queries"), limit=1000).records
        assert sum(r.asset_materialization.metadata["rows_written"].value for r in raw) == sum(committed.values())
