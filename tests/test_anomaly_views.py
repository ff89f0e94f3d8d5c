"""The dashboards' anomaly queries on a hand-made serving folder."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.dashboard.filters import Filters, Instance
from pipeline_assets.serving.dashboard.views import insights_anomalies as views

H1, H2, H3 = datetime(2024, 3, 8, 10), datetime(2024, 3, 8, 11), datetime(2024, 3, 9, 1)


def write(folder, name: str, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows), folder / f"{name}.parquet")


def serving(tmp_path) -> ServingData:
    def a(deployment, instance_id, hour, tag):
        return dict(deployment=deployment, instance_id=instance_id, hour=hour, tag=tag, value=2.0, baseline=1.0,
                    threshold=1.5, detail=f"{tag} at {hour:%H}")  # fmt: skip

    write(tmp_path, "workload_anomalies", [
        a("provisioned", 1, H1, "exec_spike"), a("provisioned", 1, H2, "exec_spike"),
        a("provisioned", 1, H2, "heavy_spill"), a("provisioned", 2, H3, "queue_bound"),
        a("serverless", 1, H1, "abort_burst"),
    ])  # fmt: skip
    write(tmp_path, "query_metrics", [
        dict(deployment="provisioned", instance_id=1, hour=h, arrival_date=h.date(), exec_p95_ms=p95, queries=6)
        for h, p95 in ((H1, 500.0), (H2, 900.0))
    ])
    return ServingData(tmp_path)


def test_fleet_counts_per_instance_and_tag_within_the_filters(tmp_path):
    data = serving(tmp_path)
    counts = views.fleet_anomalies(data, Filters(deployments=("provisioned",), start=date(2024, 3, 8), end=date(2024, 3, 8)))
    assert counts[["instance", "tag", "hours"]].values.tolist() == [
        ["provisioned:1", "exec_spike", 2], ["provisioned:1", "heavy_spill", 1],
    ]  # fmt: skip
    recent = views.recent_anomalies(data, Filters(), limit=2)
    assert recent[["instance", "tag"]].values.tolist() == [["provisioned:2", "queue_bound"], ["provisioned:1", "exec_spike"]]


def test_expert_markers_sit_on_the_hours_p95(tmp_path):
    tags = views.instance_anomalies(serving(tmp_path), Filters(), Instance("provisioned", 1))
    assert tags[["hour", "tag", "exec_p95_ms"]].values.tolist() == [
        [H1, "exec_spike", 500.0], [H2, "exec_spike", 900.0], [H2, "heavy_spill", 900.0],
    ]  # fmt: skip
