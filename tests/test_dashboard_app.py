"""Both dashboard pages under Streamlit's AppTest, over a serving folder the real pipeline built.

Numbers are checked against pandas on the generated rows (not against the marts), and every
chart must receive data.
"""

from __future__ import annotations

import base64
import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import serving_pipeline
from serving_pipeline import Built
from streamlit.testing.v1 import AppTest

import pipeline_assets.serving.dashboard as dashboard
from pipeline_assets.serving.dashboard import ui

APP = Path(dashboard.__file__).parent / "app.py"
AGGREGATE_CHARTS = ("query_types", "per_hour", "cache_hit_rate", "spill_vs_scan", "leaderboard", "plan_ops", "compile_share")
AGGREGATE_CHARTS += ("fleet_tail",)  # drift needs two weeks; the serving data has one
EXPERT_CHARTS = ("stress", "latency", "top_tables", "since_ingest", "until_ingest")
EXPERT_CHARTS += ("instance_tail",)
# forecast_winners needs 8+ days of history; the build has 3 (test_forecast_asset covers it).
EXPERT_CHARTS += ("forecast_band",)
AGGREGATE_CHARTS += ("anomalies_per_instance",)
EXPERT_CHARTS += ("anomaly_tags",)
AGGREGATE_CHARTS += ("cache_opportunity",)
EXPERT_CHARTS += ("repetition_per_day",)
# The query-volume cards (other sections' cards show shares, checked by their own tests).
VOLUME_CARDS = ("Total queries", "Successful", "Aborted", "Cached", "Scanned", "Spilled", "Joins", "Aggregations")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


@pytest.fixture(scope="module")
def source(built: Built) -> pd.DataFrame:
    df = built.source.to_pandas()
    return df.assign(arrival_date=df["arrival_timestamp"].dt.date)


@pytest.fixture
def app_test(built: Built, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("REDSET_SERVING_DIR", str(built.serving_dir))
    return AppTest.from_file(str(APP), default_timeout=60)


# --- reading what the app rendered --------------------------------------------------------------


def decode(values: object) -> np.ndarray:
    """A plotly array from the figure JSON: a list, or numpy's base64 'bdata' encoding."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
    return np.asarray(values if values is not None else [])


def charts(at: AppTest) -> dict[str, list[dict]]:
    """Plotly charts by their key: per trace, its name and the decoded x / y / values / labels."""
    out = {}
    for element in at.get("plotly_chart"):
        key = element.proto.id.rsplit("-", 1)[-1]
        spec = json.loads(element.proto.spec)
        out[key] = [
            {"name": t.get("name"), **{f: decode(t.get(f)) for f in ("x", "y", "values", "labels")}}
            for t in spec["data"]
        ]
    return out


def points(traces: list[dict]) -> int:
    return sum(max(len(t["x"]), len(t["y"]), len(t["values"])) for t in traces)


def metrics(at: AppTest) -> dict[str, float]:
    """Card values; MB cards show a short unit (289.2 TB) and the exact MB in their help text."""
    exact = {m.label: m.help if m.help else m.value for m in at.metric if m.label in VOLUME_CARDS}
    return {label: float(text.replace(",", "").removesuffix(" MB")) for label, text in exact.items()}


def expected_cards(df: pd.DataFrame) -> dict[str, float]:
    aborted = df["was_aborted"].fillna(False).astype(bool)
    return {
        "Total queries": len(df),
        "Successful": int((~aborted).sum()),
        "Aborted": int(aborted.sum()),
        "Cached": int(df["was_cached"].fillna(False).sum()),
        "Scanned": round(df["mbytes_scanned"].sum()),
        "Spilled": round(df["mbytes_spilled"].sum()),
        "Joins": int(df["num_joins"].sum()),
        "Aggregations": int(df["num_aggregations"].sum()),
    }


def table_ids(values: pd.Series) -> pd.Series:
    """One row per (query, table id) from comma-separated id lists (NULL/empty/padded handled)."""
    ids = values.dropna().str.split(",").explode().str.strip()
    return ids[ids != ""].astype("int64")


# --- aggregate view -------------------------------------------------------------------------------


def test_aggregate_view_kpis_and_charts_match_the_source(app_test: AppTest, source: pd.DataFrame) -> None:
    at = app_test.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Fleet: aggregate view"
    assert metrics(at) == pytest.approx(expected_cards(source))
    scanned = next(m for m in at.metric if m.label == "Scanned")
    assert scanned.value == ui.megabytes(source["mbytes_scanned"].sum())

    drawn = charts(at)
    assert set(drawn) == set(AGGREGATE_CHARTS)
    for key in AGGREGATE_CHARTS:
        assert points(drawn[key]) > 0, f"chart {key} got no data"

    # The donut and the hourly line add up to the source's counts.
    donut = drawn["query_types"][0]
    assert dict(zip(donut["labels"], donut["values"])) == source["query_type"].value_counts().to_dict()
    assert sum(t["y"].sum() for t in drawn["per_hour"]) == len(source)

    # The default board ranks instances by queries.
    assert at.selectbox(key="board").value == "instances_by_queries"
    per_instance = source.groupby(["deployment", "instance_id"]).size().sort_values(ascending=False)
    bars = np.concatenate([t["x"] for t in drawn["leaderboard"]])
    assert sorted(bars, reverse=True) == per_instance.head(10).tolist()

    # Top users and longest compiles.
    users = at.dataframe[0].value
    by_user = source.groupby(["deployment", "instance_id", "user_id"]).size().sort_values(ascending=False)
    assert users["queries"].tolist() == by_user.head(5).tolist()
    compiles = at.dataframe[1].value
    longest = source["compile_duration_ms"].dropna().sort_values(ascending=False).head(10)
    assert compiles["compile ms"].tolist() == longest.astype(float).tolist()
    assert set(compiles["query_id"]) <= set(source["query_id"])


def test_deployment_and_date_filters(app_test: AppTest, source: pd.DataFrame) -> None:
    at = app_test.run()
    at.multiselect(key="deployments").set_value(["serverless"]).run()
    assert not at.exception, at.exception
    assert metrics(at) == pytest.approx(expected_cards(source[source["deployment"] == "serverless"]))

    day = date(2024, 3, 2)
    at.toggle(key="all_dates").set_value(False).run()
    at.date_input(key="date_range").set_value((day, day)).run()
    assert not at.exception, at.exception
    one_day = source[(source["deployment"] == "serverless") & (source["arrival_date"] == day)]
    assert metrics(at) == pytest.approx(expected_cards(one_day))
    assert at.selectbox(key="period").options == ["all", "2024-03-02"]


def test_board_picker_switches_the_board(app_test: AppTest, source: pd.DataFrame) -> None:
    at = app_test.run()
    at.selectbox(key="board").set_value("instances_by_spilled_mb").run()
    assert not at.exception, at.exception
    spilled = source.groupby(["deployment", "instance_id"])["mbytes_spilled"].sum().sort_values(ascending=False)
    bars = np.sort(np.concatenate([t["x"] for t in charts(at)["leaderboard"]]))[::-1]
    assert bars == pytest.approx(spilled.head(len(bars)).to_numpy())


# --- expert view ----------------------------------------------------------------------------------


def test_expert_view_for_the_busiest_instance(app_test: AppTest, source: pd.DataFrame) -> None:
    at = app_test.run().switch_page("views/expert.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Expert view: one instance"

    # Deployment defaults to the first; the instance to its busiest.
    deployment = at.selectbox(key="x_deployment").value
    mine = source[source["deployment"] == deployment]
    busiest = mine.groupby("instance_id").size().idxmax()
    assert at.selectbox(key="x_instance").value == busiest
    rows = mine[mine["instance_id"] == busiest]

    drawn = charts(at)
    assert set(drawn) == set(EXPERT_CHARTS)
    for key in EXPERT_CHARTS:
        assert points(drawn[key]) > 0, f"chart {key} got no data"

    # Latency: one point per hour with queries.
    assert len(drawn["latency"][0]["x"]) == rows["arrival_timestamp"].dt.floor("h").nunique()

    # Most accessed tables: reads per table from the raw id lists.
    reads = table_ids(rows["read_table_ids"]).value_counts()
    writes = table_ids(rows["write_table_ids"]).value_counts()
    accesses = reads.add(writes, fill_value=0).sort_values(ascending=False)
    read_trace = next(t for t in drawn["top_tables"] if t["name"] == "reads")
    shown = dict(zip(read_trace["y"].astype(int), read_trace["x"]))
    top_table = int(accesses.index[0])
    assert shown[top_table] == reads.get(top_table, 0)

    # Table workload with the analytical flag, most-selected table first.
    workload = at.dataframe[0].value
    assert workload["analytical"].dtype == bool
    selects = table_ids(rows.loc[rows["query_type"] == "select", "read_table_ids"]).value_counts()
    assert workload["selects"].iloc[0] == selects.max()
    assert set(workload["table_id"]) >= set(selects.index)


def test_expert_view_follows_the_instance_picker(app_test: AppTest, source: pd.DataFrame) -> None:
    at = app_test.run().switch_page("views/expert.py").run()
    at.selectbox(key="x_deployment").set_value("serverless").run()
    options = at.selectbox(key="x_instance").options
    quietest = int(options[-1].split()[0])
    at.selectbox(key="x_instance").set_value(quietest).run()
    assert not at.exception, at.exception
    rows = source[(source["deployment"] == "serverless") & (source["instance_id"] == quietest)]
    assert len(charts(at)["latency"][0]["x"]) == rows["arrival_timestamp"].dt.floor("h").nunique()


# --- empty state ----------------------------------------------------------------------------------


def test_empty_state_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_SERVING_DIR", str(tmp_path / "nothing-yet"))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    text = at.info[0].value
    assert "No serving data yet" in text and "make demo" in text and "serving_snapshot" in text
    assert not at.get("plotly_chart") and not at.metric


# --- the data cache -------------------------------------------------------------------------------


def test_reruns_reuse_the_snapshot_until_a_new_one_is_published(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from pipeline_assets.serving import publishes, snapshot

    serving = tmp_path / "serving"
    shutil.copytree(built.serving_dir, serving)  # a folder no other test has cached
    monkeypatch.setenv("REDSET_SERVING_DIR", str(serving))
    reads: list[str] = []
    read_table = pq.read_table

    def counting_read_table(source, *args, **kwargs):
        reads.append(Path(source.name).stem)
        return read_table(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", counting_read_table)

    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    first = sorted(reads)
    assert {"kpis", "query_metrics"} <= set(first) and len(first) == len(set(first)), first

    reads.clear()
    at.run()  # a rerun on the same snapshot: nothing read again
    assert not at.exception, at.exception
    assert reads == []

    snapshot.publish(built.warehouse, serving)  # a new publish stamp
    at.run()
    assert not at.exception, at.exception
    assert sorted(reads) == first

    # The stamp is the key: a new one alone (same files) is a new snapshot to the dashboards.
    reads.clear()
    manifest_path = publishes.current_dir(serving) / snapshot.MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["published_at"] = "2099-01-01T00:00:00.000+00:00"
    manifest_path.write_text(json.dumps(manifest))
    at.run()
    assert not at.exception, at.exception
    assert sorted(reads) == first


def test_repetition_cards_on_the_aggregate_view(app_test: AppTest, source: pd.DataFrame) -> None:
    at = app_test.run()
    cards = {m.label: m.value for m in at.metric}
    hit_rate = source["was_cached"].fillna(False).astype(bool).mean()
    assert cards["Cache hit rate"] == f"{hit_rate:.1%}"
    assert {"Repeat share", "Missed-cache share", "Cacheable hours"} <= set(cards)
    assert points(charts(at)["cache_opportunity"]) > 0


# --- live mode's verification banner --------------------------------------------------------------


def test_unverified_banner_while_dbt_tests_fail(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_assets.serving.verification import STATE_FILE

    serving = tmp_path / "serving"
    shutil.copytree(built.serving_dir, serving)
    monkeypatch.setenv("REDSET_SERVING_DIR", str(serving))
    failing = ["not_null_clean_queries_deployment", "unique_leaderboard_query_id"]
    (serving / STATE_FILE).write_text(json.dumps(
        {"verified": False, "checked_at": "2024-03-02T10:05:00+00:00", "unverified_since": "2024-03-02T09:58:07+00:00", "failed": failing}
    ))  # fmt: skip

    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    [banner] = at.warning
    assert "Unverified since 2024-03-02 09:58:07 UTC" in banner.value
    assert "2 dbt tests failing (not_null_clean_queries_deployment, unique_leaderboard_query_id)" in banner.value
    assert points(charts(at)["query_types"]) > 0  # the numbers are still shown

    at.switch_page("views/expert.py").run()  # every page
    assert "Unverified since" in at.warning[0].value

    (serving / STATE_FILE).write_text(json.dumps(
        {"verified": True, "checked_at": "2024-03-02T10:06:00+00:00", "unverified_since": None, "failed": []}
    ))  # fmt: skip
    at.run()  # the tests pass again: the banner goes
    assert not at.exception, at.exception
    assert not at.warning


def test_the_status_line_says_the_raw_zones_freshness(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_assets.serving import source_freshness

    serving = tmp_path / "serving"
    shutil.copytree(built.serving_dir, serving)
    monkeypatch.setenv("REDSET_SERVING_DIR", str(serving))

    def status_line(at: AppTest) -> str:
        assert not at.exception, at.exception
        [line] = [c.value for c in at.caption if c.value.startswith("Snapshot published")]
        return line

    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "raw zone" not in status_line(at)  # never checked yet: nothing said
    criteria = {"warn_after": {"count": 360, "period": "minute"}, "error_after": {"count": 1560, "period": "minute"}}
    result = {"status": "warn", "max_loaded_at": "2024-03-02T03:00:00+00:00", "max_loaded_at_time_ago_in_s": 7 * 3600, "criteria": criteria}
    source_freshness.write_state(source_freshness.summarize({"results": [result]}), serving)
    at.run()
    assert status_line(at).endswith(" query_metrics rows · raw zone WARN: last ingest 7.0 h ago (over 360 min)")
    at.switch_page("views/expert.py").run()  # every page
    assert status_line(at).endswith(" · raw zone WARN: last ingest 7.0 h ago (over 360 min)")
