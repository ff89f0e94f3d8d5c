"""While dbt builds and the snapshot publishes, the dashboards keep reading: 0 lock errors.

A subprocess runs two cycles of `dbt build` + serving_snapshot's publish on a copy of the
pipeline's folders. Meanwhile this process reads everything the pages read, in a loop, and
renders the aggregate page with AppTest. A probe that takes no lock (fcntl F_GETLK) shows the
warehouse really was write-locked during the loop: a dashboard on the warehouse would have failed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import serving_pipeline
from serving_pipeline import Built
from streamlit.testing.v1 import AppTest

import pipeline_assets.serving.dashboard as dashboard
from pipeline_assets.serving.dashboard.data import Filters, Instance, ServingData

CYCLES = 1
BUILD_AND_PUBLISH = """
import json, subprocess, sys
from pathlib import Path
from pipeline_assets.serving.snapshot import publish

dbt, warehouse, serving, cycles = json.loads(sys.argv[1])
for _ in range(cycles):
    subprocess.run(dbt, check=True)
    publish(Path(warehouse), Path(serving))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


def write_locked(path: Path) -> bool:
    """Whether another process holds a lock on `path`; F_GETLK asks without taking one."""
    request = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
    fd = os.open(path, os.O_RDONLY)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    finally:
        os.close(fd)
    return struct.unpack("hhqqi4x", answer)[0] != fcntl.F_UNLCK


class LockProbe(threading.Thread):
    """Counts, every 50 ms until stopped, the probes that found the warehouse locked."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.locked, self.probes = path, 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            self.probes += 1
            self.locked += write_locked(self.path)


def read_everything(data: ServingData) -> int:
    """Every read the two pages make; returns the rows seen, so an empty read is visible."""
    f = Filters()
    frames = [data.query_types(f), data.hourly(f), data.spill_vs_scan(f), data.compile_by_type(f)]
    for board in data.boards():
        frames.append(data.leaderboard(board, "all", f))
    instances = data.instances(f)
    inst = Instance(instances.at[0, "deployment"], int(instances.at[0, "instance_id"]))
    frames += [
        instances, data.stress(f, inst), data.latency(f, inst), data.table_workload(inst),
        data.ingest_gaps(f, inst), data.top_tables(f, inst),
    ]  # fmt: skip
    assert data.kpis(f)["queries"] == serving_pipeline.ROWS
    return sum(len(frame) for frame in frames)




def test_dashboards_read_without_lock_errors_while_dbt_builds(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy, so the other tests' folder stays as it was.
    mine = replace(
        built,
        root=tmp_path,
        raw_dir=tmp_path / "data" / "raw",
        warehouse=tmp_path / "data" / "warehouse.duckdb",
        serving_dir=tmp_path / "data" / "serving",
    )
    for src, dst in ((built.raw_dir, mine.raw_dir), (built.serving_dir, mine.serving_dir)):
        shutil.copytree(src, dst)
    shutil.copyfile(built.warehouse, mine.warehouse)
    monkeypatch.setenv("REDSET_SERVING_DIR", str(mine.serving_dir))

    data = ServingData(mine.serving_dir)
    first = data.manifest()["published_at"]
    dbt = serving_pipeline.dbt_command(mine, "build", "--quiet")
    args = json.dumps([dbt, str(mine.warehouse), str(mine.serving_dir), CYCLES])
    builder = subprocess.Popen(
        [sys.executable, "-c", BUILD_AND_PUBLISH, args],
        env={**os.environ, **mine.env()},
        cwd=serving_pipeline.settings.DBT_PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    probe = LockProbe(mine.warehouse)
    probe.start()
    reads = page_runs = 0
    errors: list[str] = []
    publications = {first}
    app = Path(dashboard.__file__).parent / "app.py"
    try:
        while builder.poll() is None:
            try:
                assert read_everything(data) > 0
                reads += 1
                if reads % 25 == 0:
                    at = AppTest.from_file(str(app), default_timeout=60).run()
                    page_runs += 1
                    if at.exception:
                        errors.append(str(at.exception))
            except Exception as exc:  # every failure counts, lock or otherwise
                errors.append(repr(exc))
            publications.add(data.manifest()["published_at"])
    finally:
        output = builder.communicate(timeout=600)[0]
        probe.stopped.set()
        probe.join()
    assert builder.returncode == 0, output[-3000:]
    publications.add(data.manifest()["published_at"])

    assert errors == [], f"{len(errors)} failed reads, first: {errors[0]}"
    assert reads > 0 and page_runs > 0
    # The reads spanned new publications, and the warehouse was locked while they went on.
    assert len(publications) == 1 + CYCLES
    assert probe.locked > 0
    print(f"{reads} full reads, {page_runs} page renders; {probe.locked} of {probe.probes} probes saw the warehouse locked")
