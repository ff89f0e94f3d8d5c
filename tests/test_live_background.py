"""Live mode's background slices (pipeline_assets/live/background.py), on the project's real dbt parse:
the test slices, as dbt itself selects them (`dbt ls`), hold every test of a whole `dbt test` exactly once;
the insights slices run each insights model after the insights models it reads, a daily one once per
stretch of owed dates, and no other model."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from dbt_support import dbt_paths

from pipeline_assets.live import background
from pipeline_assets.live.warm_dbt import WarmDbt
from pipeline_assets.warehouse.dbt_assets import dbt_project

pytestmark = pytest.mark.slow(seconds=40)


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        dbt_paths(monkeypatch, tmp_path_factory.mktemp("background"))
        runner = WarmDbt(tmp_path_factory.mktemp("warm_dbt"))
        runner.manifest  # noqa: B018  (parsed in this environment)
        yield runner


def manifest_json() -> dict:
    return json.loads(Path(dbt_project.manifest_path).read_text())


def listed(dbt: WarmDbt, args: tuple[str, ...]) -> list[str]:
    """The unique ids a slice's `dbt test` would run: `dbt ls` with the same selection."""
    assert args[0] == "test"
    outcome = dbt.invoke(["ls", "--resource-type", "test", "--resource-type", "unit_test",
                          "--output", "json", "--output-keys", "unique_id", *args[1:]])  # fmt: skip
    assert outcome.success, outcome.exception
    return [json.loads(line)["unique_id"] for line in outcome.result]


def test_test_slices_hold_every_test_exactly_once(dbt: WarmDbt) -> None:
    slices = background.test_slices(dbt.manifest)
    runs = Counter(uid for s in slices for uid in listed(dbt, s.args))
    # What one `dbt test` through the same runner runs (the warm runner, handed its manifest,
    # lists no unit tests: those run in the batch builds' dbt processes and in test_dbt_unit_tests).
    expected = set(listed(dbt, ("test",)))
    m = manifest_json()
    assert expected >= {uid for uid, n in m["nodes"].items() if n["resource_type"] == "test"}
    assert len(expected) > 100
    assert set(runs) == expected
    assert [uid for uid, n in runs.items() if n > 1] == []
    assert len(slices) > 5  # several files: no slice is every test


def test_insights_slices_follow_the_graph_and_the_owed_stretches(dbt: WarmDbt) -> None:
    days = {date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 5)}  # two stretches
    slices = background.insights_slices(dbt.manifest, days)
    m = manifest_json()
    insights = {n["name"]: n for n in m["nodes"].values()
                if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/insights/")}  # fmt: skip
    names = [s.args[-1] for s in slices]
    assert set(names) == set(insights) and all(s.args[:2] == ("run", "--select") for s in slices)
    for name, node in insights.items():
        daily = "daily" in node["config"]["tags"]
        assert names.count(name) == (2 if daily else 1), name
        windows = sorted(s.window for s in slices if s.args[-1] == name)
        assert windows == ([(date(2024, 3, 1), date(2024, 3, 2)), (date(2024, 3, 5), date(2024, 3, 5))] if daily else [None])
        first = names.index(name)
        for parent in node["depends_on"]["nodes"]:
            parent_name = m["nodes"].get(parent, {}).get("name")  # sources are no nodes
            if parent_name in insights:
                assert max(i for i, n in enumerate(names) if n == parent_name) < first, (parent_name, name)
    window = dict(next(s for s in slices if s.window == (date(2024, 3, 5), date(2024, 3, 5))).env)
    assert (window["REDSET_MIN_DATE"], window["REDSET_MAX_DATE"]) == ("2024-03-05", "2024-03-05")
