"""The dashboards' data access: parameterised SQL over the serving files, filters, missing files."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import serving_pipeline
from serving_pipeline import Built

from pipeline_assets.serving import publishes
from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.data import Filters, Instance, ServingData

HOSTILE = "provisioned' OR '1'='1"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


@pytest.fixture
def data(built: Built, zone_storage: str | None) -> Iterator[ServingData]:
    """The built snapshot through the dashboards' reader, on disk and ([s3]) on the session's S3 server."""
    data = ServingData(serving_pipeline.served(built, zone_storage))
    yield data
    data.close()


@pytest.fixture(scope="module")
def source(built: Built) -> pd.DataFrame:
    df = built.source.to_pandas()
    return df.assign(arrival_date=df["arrival_timestamp"].dt.date)


def test_user_input_is_data_never_sql(data: ServingData) -> None:
    """Quotes in a filter value match nothing instead of rewriting the query."""
    assert data.kpis(Filters(deployments=(HOSTILE,)))["queries"] == 0
    assert data.leaderboard("instances_by_queries' OR '1'='1", "all", Filters()).empty
    assert data.latency(Filters(), Instance(HOSTILE, 1)).empty
    assert data.kpis(Filters())["queries"] == serving_pipeline.ROWS  # and the tables are intact


def test_filters_select_deployments_and_inclusive_dates(data: ServingData, source: pd.DataFrame) -> None:
    day1, day2 = date(2024, 3, 1), date(2024, 3, 2)
    got = data.kpis(Filters(deployments=("provisioned",), start=day1, end=day2))["queries"]
    expected = source[(source["deployment"] == "provisioned") & source["arrival_date"].between(day1, day2)]
    assert got == len(expected)
    assert data.kpis(Filters(deployments=()))["queries"] == 0
    assert data.date_bounds() == (date(2024, 3, 1), date(2024, 3, 3))
    assert data.deployments() == ["provisioned", "serverless"]
    assert data.periods(Filters(start=day2, end=day2)) == ["all", "2024-03-02"]


def test_compile_metrics_by_query_type(data: ServingData, source: pd.DataFrame) -> None:
    got = data.compile_by_type(Filters()).set_index("query_type")
    expected = source.groupby("query_type").agg(
        queries=("query_id", "size"), compiled=("compile_duration_ms", lambda s: int((s > 0).sum()))
    )
    assert got["queries"].to_dict() == expected["queries"].to_dict()
    assert got["compiled_queries"].to_dict() == expected["compiled"].to_dict()
    assert ((got["compile_share"] >= 0) & (got["compile_share"] <= 1)).all()


def test_a_table_not_published_yet_reads_as_empty(built: Built, tmp_path: Path) -> None:
    partial = tmp_path / "serving"
    partial.mkdir()
    for name in ("kpis.parquet", "query_metrics.parquet", "_published.json"):
        shutil.copyfile(built.snapshot / name, partial / name)
    data = ServingData(partial)
    assert not data.is_empty()
    assert data.kpis(Filters())["queries"] == serving_pipeline.ROWS
    assert data.boards() == [] and data.leaderboard("instances_by_queries", "all", Filters()).empty
    assert data.table_workload(Instance("provisioned", 1)).empty
    assert ServingData(tmp_path / "nothing").is_empty()


def test_a_newly_published_file_is_seen_by_an_open_connection(built: Built, tmp_path: Path) -> None:
    serving = tmp_path / "serving"
    shutil.copytree(built.serving_dir, serving)
    data = ServingData(serving)
    before = data.kpis(Filters())["queries"]
    # A publication with one deployment only, switched to like serving_snapshot does (publishes.py).
    kpis = pd.read_parquet(publishes.current_dir(serving) / "kpis.parquet")
    publish_id, folder = publishes.new_folder(serving)
    for name in ("query_metrics.parquet", "_published.json"):
        shutil.copyfile(publishes.current_dir(serving) / name, folder / name)
    kpis[kpis["deployment"] == "serverless"].to_parquet(folder / "kpis.parquet")
    publishes.switch(serving, publish_id)
    after = data.kpis(Filters())["queries"]
    assert before == serving_pipeline.ROWS and after == kpis.loc[kpis["deployment"] == "serverless", "queries"].sum()


@pytest.mark.parametrize(
    ("mb", "shown"),
    [(0, "0 MB"), (999.4, "999 MB"), (1_500, "1.5 GB"), (289_151_936, "289.2 TB"), (2.5e9, "2.5 PB")],
)
def test_megabytes_are_shown_in_a_short_unit(mb: float, shown: str) -> None:
    assert ui.megabytes(mb) == shown
