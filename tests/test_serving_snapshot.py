"""serving_snapshot: every served mart lands in the serving zone, KPIs tie out with the source.

The zone comes from the real pipeline (tests/serving_pipeline.py): generated rows -> raw zone
-> dbt build -> serving_snapshot materialized through Dagster; the tests that take `served` or
`zone_storage` run on disk and again with the zone on the session's S3 server ([s3]).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import serving_pipeline
from serving_pipeline import Built, listed, serving_at

from pipeline_assets.serving import publishes, snapshot
from pipeline_assets.warehouse.resource import warehouse_resource
from pipeline_assets.warehouse.served import SERVED_MODELS


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


@pytest.fixture
def served(built: Built, zone_storage: str | None) -> publishes.Zone:
    return serving_pipeline.served(built, zone_storage)


def read(publish: publishes.Publish, table: str) -> pd.DataFrame:
    """One published table, read through the zone's file system as the dashboards read it."""
    _, arrow = publish.read_table(f"{table}.parquet")
    return duckdb.execute("SELECT * FROM arrow").df()


def expected_kpis(source: pd.DataFrame) -> pd.DataFrame:
    """KPIs per (deployment, arrival date) straight from the generated rows, with pandas."""
    df = source.assign(arrival_date=source["arrival_timestamp"].dt.date)
    aborted = df["was_aborted"].fillna(False).astype(bool)
    df = df.assign(
        queries=1,
        successful=(~aborted).astype(int),
        aborted=aborted.astype(int),
        cached=df["was_cached"].fillna(False).astype(int),
    )
    sums = {
        "queries": "sum", "successful": "sum", "aborted": "sum", "cached": "sum",
        "mbytes_scanned": "sum", "mbytes_spilled": "sum",
        "num_joins": "sum", "num_aggregations": "sum", "num_scans": "sum",
    }  # fmt: skip
    out = df.groupby(["deployment", "arrival_date"], as_index=False).agg(sums)
    return out.rename(columns={"num_joins": "joins", "num_aggregations": "aggregations", "num_scans": "scans"})


def test_every_served_mart_is_exported_whole(built: Built, served: publishes.Zone) -> None:
    manifest = snapshot.read_manifest(served)
    assert manifest is not None and manifest["missing"] == []
    publish = served.current()
    assert manifest["publish_id"] == publish.publish_id
    con = duckdb.connect(str(built.warehouse), read_only=True)
    try:
        for model in SERVED_MODELS:
            in_warehouse = con.execute(f'SELECT count(*) FROM main."{model}"').fetchone()[0]
            exported = read(publish, model)
            assert len(exported) == in_warehouse == manifest["tables"][model]["rows"], model
            assert in_warehouse > 0, f"{model} is empty: the test data should fill every mart"
    finally:
        con.close()
    # Row-level tables stay in the warehouse, and nothing half-written is left behind.
    assert listed(served, publishes.PUBLISHES, publish.publish_id) == sorted(
        [f"{m}.parquet" for m in SERVED_MODELS] + ["kpis.parquet", "evidence.parquet", "_published.json"]
    )
    assert listed(served) == [publishes.POINTER, publishes.PUBLISHES]
    assert listed(served, publishes.PUBLISHES) == [publish.publish_id]


def test_kpis_match_an_independent_pandas_computation(built: Built, served: publishes.Zone) -> None:
    source = built.source.to_pandas()
    expected = expected_kpis(source).sort_values(["deployment", "arrival_date"]).reset_index(drop=True)
    kpis = read(served.current(), "kpis")
    kpis["arrival_date"] = pd.to_datetime(kpis["arrival_date"]).dt.date
    kpis = kpis.sort_values(["deployment", "arrival_date"]).reset_index(drop=True)
    assert len(kpis) == len(expected) == 2 * serving_pipeline.DAYS
    assert kpis["queries"].sum() == serving_pipeline.ROWS
    for column in ("queries", "successful", "aborted", "cached", "joins", "aggregations", "scans"):
        assert kpis[column].tolist() == expected[column].astype(int).tolist(), column
        assert str(kpis[column].dtype) == "int64", f"{column} should stay an integer count"
    for column in ("mbytes_scanned", "mbytes_spilled"):
        assert kpis[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-9), column


def test_query_metrics_export_keeps_the_marts_values(built: Built, served: publishes.Zone) -> None:
    """Spot-check a served mart against pandas: queries per (deployment, instance, hour)."""
    source = built.source.to_pandas()
    expected = (
        source.assign(hour=source["arrival_timestamp"].dt.floor("h"))
        .groupby(["deployment", "instance_id", "hour"])
        .size()
        .sort_index()
    )
    exported = read(served.current(), "query_metrics")
    got = exported.set_index(["deployment", "instance_id", "hour"])["queries"].sort_index()
    assert got.index.tolist() == expected.index.tolist()
    assert got.tolist() == expected.tolist()


def test_republishing_replaces_files_and_a_failed_publish_keeps_the_last_one(
    built: Built, tmp_path: Path, zone_storage: str | None
) -> None:
    serving = serving_at(tmp_path, zone_storage)
    first = snapshot.publish(built.warehouse, serving)
    second = snapshot.publish(built.warehouse, serving)
    assert second.rows == first.rows and second.serving_dir == serving
    assert snapshot.read_manifest(serving)["published_at"] == second.published_at
    zone = publishes.zone(serving)
    assert listed(zone, publishes.PUBLISHES) == [first.publish_id, second.publish_id]

    with pytest.raises(FileNotFoundError, match="nowhere.duckdb"):
        snapshot.publish(tmp_path / "nowhere.duckdb", serving)
    assert snapshot.read_manifest(serving)["published_at"] == second.published_at
    assert listed(zone) == [publishes.POINTER, publishes.PUBLISHES], "temporary files left behind"
    assert listed(zone, publishes.PUBLISHES) == [first.publish_id, second.publish_id]


def test_marts_not_built_yet_are_listed_and_an_empty_warehouse_is_an_error(
    tmp_path: Path, zone_storage: str | None
) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE TABLE stress_index AS SELECT 'serverless' AS deployment, 1 AS instance_id")
    con.close()
    serving = serving_at(tmp_path, zone_storage)
    pub = snapshot.publish(warehouse, serving)
    assert pub.rows == {"stress_index": 1}
    assert pub.missing == [m for m in SERVED_MODELS if m != "stress_index"]
    assert publishes.current(serving).read_json("_published.json")["missing"] == pub.missing
    assert read(publishes.current(serving), "stress_index").to_dict("records") == [
        {"deployment": "serverless", "instance_id": 1}
    ]

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    serving2 = serving_at(tmp_path, zone_storage, "serving2")
    with pytest.raises(RuntimeError, match="materialize the dbt models first"):
        snapshot.publish(empty, serving2)
    assert listed(publishes.zone(serving2), publishes.PUBLISHES) == [], "a failed publish leaves no files"


def test_publish_waits_for_another_processs_write_lock(built: Built, tmp_path: Path) -> None:
    """dbt run outside Dagster holds the write lock: the snapshot waits instead of failing."""
    warehouse = tmp_path / "w.duckdb"
    warehouse.write_bytes(built.warehouse.read_bytes())
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(warehouse)!r})\n"
            "print('locked', flush=True)\n"
            "time.sleep(3)\n"
            "con.close()\n"
        )],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse), read_only=True)  # what a dashboard on the warehouse would get
        pub = snapshot.publish(warehouse, tmp_path / "serving")
        assert pub.rows["query_metrics"] > 0
    finally:
        holder.wait(30)


def test_snapshot_is_requested_after_dbt_updates_a_mart_and_only_once() -> None:
    """The automation condition its sensor evaluates: no dbt run, no snapshot; one per update."""
    import dagster as dg

    from pipeline_assets.orchestration.definitions import defs
    from pipeline_assets.orchestration.sensors import serving_snapshot_automation

    assert serving_snapshot_automation.default_status == dg.DefaultSensorStatus.RUNNING
    instance = dg.DagsterInstance.ephemeral()
    selection = dg.AssetSelection.assets(snapshot.serving_snapshot)

    def tick(cursor=None):
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)

    result = tick()
    assert result.total_requested == 0, "nothing built yet: nothing to publish"
    instance.report_runless_asset_event(dg.AssetMaterialization("query_metrics", partition="2024-03-01"))
    result = tick(result.cursor)
    assert result.total_requested == 1
    result = tick(result.cursor)
    assert result.total_requested == 0, "the update was handled by the requested run"
    instance.report_runless_asset_event(dg.AssetMaterialization("leaderboard"))
    assert tick(result.cursor).total_requested == 1


def test_the_warehouse_is_opened_read_only_through_duckdb_resource(tmp_path: Path) -> None:
    from dagster_duckdb import DuckDBResource

    from pipeline_assets.orchestration.definitions import defs

    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    with warehouse_resource(warehouse).get_connection() as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE t (x INT)")
    assert isinstance(defs.resources["warehouse"], DuckDBResource)


def test_the_code_locations_warehouse_follows_redset_warehouse_when_a_run_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_assets.orchestration.definitions import defs

    # The resource was built when the code location loaded; the variable is set afterwards.
    warehouse = tmp_path / "later.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE marker AS SELECT 42 AS x")
    monkeypatch.setenv("REDSET_WAREHOUSE", str(warehouse))
    with defs.resources["warehouse"].get_connection() as con:
        assert con.execute("SELECT x FROM marker").fetchone() == (42,)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE t (x INT)")


def test_the_manifest_publishes_the_quarantine_by_reason(built: Built, tmp_path: Path) -> None:
    """Every reason dbt can give, at 0 when no row has it, and the warehouse's own counts."""
    import shutil

    from pipeline_assets.serving import quarantine

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DELETE FROM main.quarantine_queries")
        for reason, n in (("null_key", 3), ("implausible_value: mbytes_scanned", 2)):
            con.execute(f"INSERT INTO main.quarantine_queries (reason) SELECT ? FROM range({n})", [reason])
    snapshot.publish(warehouse, tmp_path / "serving")
    published = snapshot.read_manifest(tmp_path / "serving")["quarantine_by_reason"]
    assert published == dict.fromkeys(quarantine.reasons(), 0) | {"null_key": 3, "implausible_value: mbytes_scanned": 2}
