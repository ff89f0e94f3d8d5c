"""bench/scale.py's stages resume: a completed stage keeps its figures and is skipped next time;
its rows are generated in slices (bench/_slices.py) whose keys never collide."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipeline_assets.settings import PROJECT_ROOT
from pipeline_assets.source import generator

START = date(2024, 3, 1)


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(PROJECT_ROOT / "bench"))
    import _slices
    import transform

    return _slices, transform


def test_slices_add_up_and_their_keys_are_unique_and_deterministic(bench) -> None:
    _slices, transform = bench
    assert _slices.slice_sizes(2500, 1000) == [1000, 1000, 500]
    slices = list(_slices.generate_slices(2500, 7, START, 3, slice_rows=1000))
    assert [t.num_rows for t in slices] == [1000, 1000, 500]
    table = pa.concat_tables(slices)
    keys = pc.binary_join_element_wise(table["deployment"], pc.cast(table["instance_id"], pa.string()),
                                       pc.cast(table["query_id"], pa.string()), ":")  # fmt: skip
    assert pc.count_distinct(keys).as_py() == 2500
    # Each slice's ids in its own range; a cached row points at a query of its own slice.
    for k, t in enumerate(slices):
        low, high = pc.min_max(t["query_id"]).values()
        assert k * _slices.QUERY_ID_STRIDE < low.as_py() and high.as_py() < (k + 1) * _slices.QUERY_ID_STRIDE
        sources = pc.drop_null(t["cache_source_query_id"])
        assert len(sources) > 0 and pc.all(pc.is_in(sources, t["query_id"])).as_py()
    # Independent draws, not one slice repeated under new ids.
    assert not slices[0]["arrival_timestamp"].equals(slices[1]["arrival_timestamp"])
    # Deterministic; slice 0 of a run that fits one slice is the generator's table itself.
    assert pa.concat_tables(_slices.generate_slices(2500, 7, START, 3, slice_rows=1000)).equals(table)
    [whole] = _slices.generate_slices(1000, 7, START, 3, slice_rows=1000)
    assert whole.equals(generator.generate(1000, seed=7, start=START, days=3))
    # The incremental stage's extra day stays above every slice's ids.
    assert pc.min(transform.appended_day(2500)["query_id"]).as_py() > _slices.MAX_SLICES * _slices.QUERY_ID_STRIDE
    with pytest.raises(ValueError, match="101 slices"):
        _slices.slice_sizes(101, 1)


def scale(work: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the bench starts a broker of its own in the work folder
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "scale.py"), "--rows", "3000", "--work", str(work), *args],
        env=env, capture_output=True, text=True, timeout=600, cwd=work.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.kafka
def test_the_produce_stage_runs_once_then_is_skipped(tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = scale(work, "--stage", "produce", "--slice-rows", "2000")
    figures = json.loads((work / "stages" / "produce.json").read_text())
    assert figures["rows"] == 3000 and figures["slices"] == 2 and figures["rows_per_s"] > 0
    assert figures["disk_after"]["kafka_log_bytes"] > 0
    assert "stage (pid" in " ".join(figures["peak_rss_mib"])
    assert "skipped" not in first

    second = scale(work, "--stage", "produce")
    assert "produce: done before" in second and "skipped" in second
    assert json.loads((work / "stages" / "produce.json").read_text()) == figures

    missing = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "scale.py"), "--rows", "3000", "--work", str(work), "--stage", "build"],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode != 0 and "needs stage dump first" in missing.stderr
