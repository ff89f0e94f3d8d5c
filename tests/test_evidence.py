"""The drill-down from an insight to its evidence: the snapshot's evidence index over the anomaly data
(tests/anomaly_data.py, built once with test_workload_anomalies), checked against the raw zone, and
the expert view showing a tagged hour's rows with their offsets."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from anomaly_data import ABORTED, P1, P2, PARTITIONS, SPIKE, SPILLED, TOPIC, anomalies_built, raw_file_name
from dbt_support import copy_built
from streamlit.testing.v1 import AppTest

import pipeline_assets.serving.dashboard as dashboard
from pipeline_assets.serving import publishes
from pipeline_assets.serving.snapshot import publish

pytestmark = pytest.mark.slow(seconds=50)

APP = Path(dashboard.__file__).parent / "app.py"
CAP = 4  # below a quiet hour's 6 queries: the cap shows


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the shared build's folder, a serving folder published from a copy of it with CAP)."""
    root = anomalies_built(tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        paths = copy_built(root, mp, tmp_path_factory.mktemp("evidence") / "data")
        mp.setenv("REDSET_EVIDENCE_ROWS", str(CAP))
        serving = paths.raw_dir.parent / "serving"
        pub = publish(paths.warehouse, serving)
    assert pub.evidence_rows == CAP and pub.rows["evidence"] > 0
    return root, serving


def raw_zone(root: Path) -> pd.DataFrame:
    """Every raw-zone row with its file: what the evidence must point at."""
    return duckdb.sql(
        f"SELECT deployment, instance_id, query_id, arrival_timestamp, was_aborted, kafka_topic, kafka_partition, "
        f"kafka_offset, filename AS raw_file FROM read_parquet('{root / 'raw'}/**/*.parquet', filename = true)"
    ).df()


def evidence(serving: Path, key: str) -> pd.DataFrame:
    return pd.read_parquet(publishes.current_dir(serving) / "evidence.parquet").query("insight_key == @key").sort_values("evidence_rank")


@pytest.mark.parametrize(("instance", "tag", "hour"), [(P1, "exec_spike", SPIKE), (P2, "heavy_spill", SPILLED),
                                                      (P2, "abort_burst", ABORTED)])  # fmt: skip
def test_a_tags_evidence_is_its_hours_rows_at_their_kafka_positions(published, instance, tag, hour) -> None:
    root, serving = published
    rows = evidence(serving, f"{tag} at {hour:%Y-%m-%d %H:%M}")
    raw = raw_zone(root)
    hours = raw[(raw.deployment == instance[0]) & (raw.instance_id == instance[1])
                & (raw.arrival_timestamp.dt.floor("h") == hour)]  # fmt: skip
    assert len(hours) == 6
    assert set(rows.insight_kind) == {"anomaly"} and set(rows.insight_rows) == {6}
    assert list(rows.evidence_rank) == list(range(1, CAP + 1))
    expected = hours.set_index("query_id")
    kept = rows.set_index("query_id")
    assert set(kept.index) <= set(expected.index)
    columns = ["kafka_topic", "kafka_partition", "kafka_offset", "raw_file"]
    pd.testing.assert_frame_equal(kept[columns], expected.loc[kept.index, columns], check_dtype=False)
    assert set(kept.kafka_partition) == {PARTITIONS[instance]} and set(kept.kafka_topic) == {TOPIC}
    assert {Path(f).name for f in kept.raw_file} == {raw_file_name(PARTITIONS[instance])}
    assert {Path(f).parent.name for f in kept.raw_file} == {f"arrival_date={hour:%Y-%m-%d}"}
    if tag == "abort_burst":  # the 4 aborted queries weigh most: exactly those are kept
        assert set(kept.index) == set(expected.index[expected.was_aborted])


def test_cache_and_leaderboard_evidence_is_capped(published) -> None:
    _, serving = published
    frame = pd.read_parquet(publishes.current_dir(serving) / "evidence.parquet")
    assert {"anomaly", "leaderboard"} <= set(frame.insight_kind)
    per_insight = frame.groupby(["insight_kind", "insight_key", "deployment", "instance_id"]).size()
    assert per_insight.max() == CAP
    board = frame[frame.insight_key.str.startswith("instances_by_queries all #1: ")]
    assert len(board) == CAP and set(board.insight_rows) == {8 * 24 * 6 + 24 * 2}  # S1: two 30-query hours


def test_the_expert_view_shows_a_tagged_hours_offsets(published, monkeypatch: pytest.MonkeyPatch) -> None:
    root, serving = published
    monkeypatch.setenv("REDSET_SERVING_DIR", str(serving))
    at = AppTest.from_file(str(APP), default_timeout=60).run().switch_page("views/expert.py").run()
    at.selectbox(key="x_deployment").set_value(P2[0]).run()
    at.selectbox(key="x_instance").set_value(P2[1]).run()
    key = f"heavy_spill at {SPILLED:%Y-%m-%d %H:%M}"
    at.selectbox(key="evidence_anomaly").set_value(key).run()
    assert not at.exception
    assert any(f"at most {CAP} query rows" in c.value for c in at.caption)
    assert any(f"{CAP} of 6 query rows shown" in c.value for c in at.caption)
    shown = next(d.value for d in at.dataframe if "kafka_offset" in d.value.columns)
    raw = raw_zone(root).set_index("query_id")
    raw = raw[(raw.deployment == P2[0]) & (raw.instance_id == P2[1])]
    assert list(shown.kafka_offset) == list(raw.loc[shown.query_id, "kafka_offset"])
    assert set(shown.kafka_partition) == {PARTITIONS[P2]}
