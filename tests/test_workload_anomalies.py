"""workload_anomalies on hand-built hourly data (tests/anomaly_data.py): each tag on exactly the hour
built for it, with the forecast tables and without them."""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import Any

import pytest
from anomaly_data import ABORTED, BEFORE, P1, P2, QUEUED, S1, SPIKE, SPILLED, SURGE, anomalies_built
from dbt_support import table

pytestmark = pytest.mark.slow(seconds=60)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """(anomalies without the forecast table, anomalies with it)."""
    root = anomalies_built(tmp_path_factory)
    return pickle.loads((root / BEFORE).read_bytes()), table(root / "warehouse.duckdb", "workload_anomalies")


def tagged(rows: list[dict[str, Any]]) -> set[tuple[str, int, datetime, str]]:
    return {(r["deployment"], r["instance_id"], r["hour"], r["tag"]) for r in rows}


def test_each_tag_fires_on_exactly_its_hour(built):
    _, after = built
    assert tagged(after) == {
        (*P1, SPIKE, "exec_spike"),
        (*P2, QUEUED, "queue_bound"),
        (*P2, SPILLED, "heavy_spill"),
        (*P2, ABORTED, "abort_burst"),
        (*S1, SURGE, "load_surge"),
    }


def test_without_forecasts_the_model_builds_the_other_tags(built):
    before, after = built
    assert tagged(before) == tagged(after) - {(*S1, SURGE, "load_surge")}


def test_values_baselines_and_thresholds(built):
    _, after = built
    by_tag = {r["tag"]: r for r in after}
    spike = by_tag["exec_spike"]
    assert spike["value"] == pytest.approx(5000.0)
    # The 168 hours before: p95 = base + 4.75 ms, bases 100/110/120 on 28 hours each, 130..160 on
    # 21 each; the median of the logs falls between 124.75 and 134.75 ms: their geometric mean.
    assert spike["baseline"] == pytest.approx(((1 + 124.75) * (1 + 134.75)) ** 0.5 - 1)
    assert spike["baseline"] < spike["threshold"] < spike["value"]
    assert by_tag["heavy_spill"]["value"] == pytest.approx(120_000.0)
    assert by_tag["heavy_spill"]["threshold"] == pytest.approx(102_400.0)  # the floor: the baseline is 0 MB
    assert by_tag["queue_bound"]["value"] == pytest.approx(60_000 / (60_000 + 6 * 130 + 15))
    assert by_tag["abort_burst"]["value"] == 4
    assert by_tag["abort_burst"]["baseline"] == pytest.approx(0.0)
    surge = by_tag["load_surge"]
    assert (surge["value"], surge["baseline"], surge["threshold"]) == (30.0, 6.0, 12.5)  # 1.25 x the served upper
    assert "30 queries" in surge["detail"] and "robust_seasonal" in surge["detail"]
