"""The generator's weeks look like Redset's: per-instance temporal shapes inside the real ranges.

The ranges are written out here (as test_generator.py writes out the paper's buckets), so the
test runs from any clone; a second test checks them against ../shared/redset.md when that file
is beside the project, and a third against its copy in docs/redset-data.md, so they cannot drift
apart silently.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline_assets.source import generator, shapes

# /work/shared/redset.md, "Temporal shapes, per instance": the interquartile range (25th..75th
# percentile over instances) of each measure on the full real sets, per deployment.
REAL_IQR = {
    "provisioned": {
        "weekend_ratio": (0.99, 1.19),
        "acf24": (0.13, 0.73),
        "acf168": (0.13, 0.74),
        "cv": (0.02, 1.70),
        "empty_share": (0.0, 0.07),
    },
    "serverless": {
        "weekend_ratio": (0.92, 1.49),
        "acf24": (0.03, 0.65),
        "acf168": (0.01, 0.58),
        "cv": (0.0, 1.43),
        "empty_share": (0.0, 0.01),
    },
}
REDSET_MD_ROWS = {  # the row labels of that table
    "weekend / weekday mean hourly count": "weekend_ratio",
    "autocorrelation at lag 24 h": "acf24",
    "autocorrelation at lag 168 h": "acf168",
    "coefficient of variation of hourly counts": "cv",
    "share of empty hours": "empty_share",
}
# 20 instances (the default for 1M rows) at 25k rows each: 91 days of hours per instance, fast.
ROWS, INSTANCES = 500_000, 20


def _shared_redset_md() -> Path | None:
    """The nearest shared/redset.md above the project (CI keeps ../shared beside the clone)."""
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / "shared" / "redset.md").is_file():
            return parent / "shared" / "redset.md"
    return None


def _parsed_iqr(path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """The interquartile ranges of the temporal-shapes table in `path`, per deployment."""
    parsed: dict[str, dict[str, tuple[float, float]]] = {d: {} for d in REAL_IQR}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in REDSET_MD_ROWS:
            for deployment, cell in zip(REAL_IQR, cells[1:]):
                lo, hi = re.search(r"\[([\d.]+), ([\d.]+)\]", cell).groups()
                parsed[deployment][REDSET_MD_ROWS[cells[0]]] = (float(lo), float(hi))
    return parsed


def test_ranges_are_redset_md_s():
    path = _shared_redset_md()
    if path is None:
        pytest.skip("no shared/redset.md beside the project")
    assert _parsed_iqr(path) == REAL_IQR


def test_ranges_are_the_docs_copy_s():
    """docs/redset-data.md carries the same table inside the repository (the README links to it)."""
    assert _parsed_iqr(Path(__file__).resolve().parents[1] / "docs" / "redset-data.md") == REAL_IQR


@functools.cache
def generated_shapes(seed: int) -> dict[tuple[str, int], dict[str, float]]:
    return shapes.instance_shapes(generator.generate(ROWS, seed=seed, instances=INSTANCES))


@pytest.mark.parametrize("seed", [42, 7, 2024])
def test_median_shapes_fall_inside_the_real_ranges(seed):
    medians = shapes.medians(generated_shapes(seed))
    outside = {
        (deployment, measure): round(value, 3)
        for deployment, ranges in REAL_IQR.items()
        for measure, value in medians[deployment].items()
        if not ranges[measure][0] <= value <= ranges[measure][1]
    }
    assert outside == {}, medians


def test_machine_and_human_instances_side_by_side():
    # Each deployment holds flat machine loads, bursty ones, and office hours with quiet weekends.
    per_instance = generated_shapes(42)
    for deployment in REAL_IQR:
        mine = [s for (d, _), s in per_instance.items() if d == deployment]
        assert min(s["cv"] for s in mine) < 0.3, deployment
        assert max(s["cv"] for s in mine) > 1.0, deployment
        assert min(s["weekend_ratio"] for s in mine) < 0.8, deployment


# The measurement itself, on hand-built series.
MONDAY = datetime(2024, 3, 4)


def _table(deployment: str, instance: int, hourly_counts: list[int]) -> pa.Table:
    """Rows of one instance: hourly_counts[h] queries in the h-th hour after Monday 00:00 UTC."""
    start = np.datetime64(MONDAY, "us")
    hours = np.repeat(np.arange(len(hourly_counts)), hourly_counts)
    ts = start + hours * np.timedelta64(3_600, "s") + np.timedelta64(60, "s")
    return pa.table({
        "deployment": [deployment] * hours.size,
        "instance_id": pa.array([instance] * hours.size, pa.int64()),
        "arrival_timestamp": pa.array(ts, pa.timestamp("us")),
    })


def test_weekend_ratio_cv_and_empty_hours_of_a_known_series():
    # Two weeks: 2 queries in every weekday hour, 3 on Saturdays and Sundays, but none on the
    # first Monday's noon hour.
    counts = [3 if (h // 24) % 7 >= 5 else 2 for h in range(14 * 24)]
    counts[12] = 0
    s = shapes.instance_shapes(_table("provisioned", 1, counts))[("provisioned", 1)]
    assert s["weekend_ratio"] == pytest.approx(3 / ((10 * 24 * 2 - 2) / (10 * 24)))
    assert s["empty_share"] == pytest.approx(1 / (14 * 24))
    values = np.array(counts, float)
    assert s["cv"] == pytest.approx(values.std() / values.mean())


def test_grid_runs_from_first_to_last_hour_with_data():
    # Empty hours inside the span count; hours before the first query do not.
    s = shapes.instance_shapes(_table("serverless", 3, [0] * 30 + [5, 0, 0, 5]))[("serverless", 3)]
    assert s["empty_share"] == pytest.approx(0.5)


def test_autocorrelation_sees_days_and_weeks():
    day = [1] * 8 + [9] * 10 + [1] * 6
    daily = shapes.instance_shapes(_table("provisioned", 1, day * 28))[("provisioned", 1)]
    assert daily["acf24"] == pytest.approx(1.0) and daily["acf168"] == pytest.approx(1.0)
    # Noise around a flat level: no memory at either lag.
    noise = np.random.default_rng(0).poisson(50, 28 * 24).tolist()
    flat = shapes.instance_shapes(_table("provisioned", 2, noise))[("provisioned", 2)]
    assert abs(flat["acf24"]) < 0.15 and abs(flat["acf168"]) < 0.15
    # A pattern of one week that does not repeat daily: high at lag 168, low at lag 24.
    week = np.random.default_rng(1).poisson(40, 168).tolist()
    weekly = shapes.instance_shapes(_table("provisioned", 3, week * 4))[("provisioned", 3)]
    assert weekly["acf168"] == pytest.approx(1.0) and abs(weekly["acf24"]) < 0.3


def test_medians_per_deployment():
    per_instance = {
        ("provisioned", 1): dict.fromkeys(shapes.MEASURES, 1.0),
        ("provisioned", 2): dict.fromkeys(shapes.MEASURES, 3.0),
        ("provisioned", 3): {**dict.fromkeys(shapes.MEASURES, 10.0), "acf168": float("nan")},
        ("serverless", 1): dict.fromkeys(shapes.MEASURES, 0.5),
    }
    medians = shapes.medians(per_instance)
    assert medians["provisioned"] == {**dict.fromkeys(shapes.MEASURES, 3.0), "acf168": 2.0}
    assert medians["serverless"] == dict.fromkeys(shapes.MEASURES, 0.5)
