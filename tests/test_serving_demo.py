"""`redset demo` pieces that can be checked without running the whole demo.

The whole demo (broker, Dagster, replay, dashboards, docs) is tried by hand with `make demo`;
these tests cover what a second run and Ctrl-C rely on.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pipeline_assets import settings
from pipeline_assets.demo import addresses, processes, replay, session
from pipeline_assets.kafka import producer
from pipeline_assets.source import generator, reader


def test_a_second_run_resumes_where_the_topic_ends_and_loses_no_row(
    kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay stopped part-way leaves each partition at its own point; resuming from the
    earliest partition end replays a few duplicates (dbt keeps one) and loses nothing."""
    monkeypatch.setenv("REDSET_TOPIC", f"demo-resume-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    source = tmp_path / "rows.parquet"
    generator.write(generator.generate(rows=5_000, seed=3, days=2), source)
    rows = pa.Table.from_batches(list(reader.iter_batches(source))).to_pandas()

    assert replay.topic_state(kafka_broker) == replay.TopicState(0, None)
    stats = producer.produce(str(source), settings.topic(), limit=3_000, bootstrap=kafka_broker, progress=False)
    assert stats.rows == 3_000 and stats.errors == 0

    state = replay.topic_state(kafka_broker)
    assert state.messages == 3_000
    assert rows["arrival_timestamp"].iloc[0] <= state.resume_from <= rows["arrival_timestamp"].iloc[2_999]
    kept, total = replay.rows_from(str(source), state.resume_from, tmp_path / "rest.parquet")
    rest = pd.read_parquet(tmp_path / "rest.parquet")
    assert total == 5_000 and kept == len(rest)
    key = ["deployment", "instance_id", "query_id"]
    on_topic_or_replayed = pd.concat([rows.iloc[:3_000][key], rest[key]]).drop_duplicates()
    assert len(on_topic_or_replayed) == 5_000, "a row would be lost"
    assert kept - (5_000 - 3_000) < 1_000, "the resume point should be near where the topic ends"


def test_rows_from_writes_nothing_when_no_row_qualifies(tmp_path: Path) -> None:
    source = tmp_path / "rows.parquet"
    generator.write(generator.generate(rows=1_000, seed=3, days=1), source)
    kept, total = replay.rows_from(str(source), datetime(2030, 1, 1), tmp_path / "none.parquet")
    assert (kept, total) == (0, 1_000)
    assert not (tmp_path / "none.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_stopping_a_service_stops_its_children_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))  # the service log goes there
    d = session.Demo(source=None, rows=0, speed=None)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        # A service that starts a child of its own, as `dagster dev` does.
        service = d.spawn("probe", ["sh", "-c", "sleep 300 & echo $! > child.pid; wait"], cwd=tmp_path)
        deadline = time.monotonic() + 30
        while not (tmp_path / "child.pid").exists() or not (tmp_path / "child.pid").read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        child = int((tmp_path / "child.pid").read_text())
        assert alive(child) and service.alive()

        d.stop()
        assert not service.alive()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), "the service's child outlived it"
        assert bystander.poll() is None, "a process the demo did not start was stopped"
    finally:
        bystander.kill()
        bystander.wait()


def test_the_ports_it_needs_are_checked_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind((addresses.HOST, 0))
        s.listen()
        taken = s.getsockname()[1]
        monkeypatch.setattr(session, "DOCS_PORT", taken)
        with pytest.raises(processes.DemoError, match=f"{taken}.*another `make demo`"):
            session.Demo(source=None, rows=0, speed=None).check_ports()
