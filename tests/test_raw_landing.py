"""The landing folder: landing_file_sensor + landing_queries with good and bad files."""

import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from raw_support import dead_rows, raw_rows

from pipeline_assets import schema, settings
from pipeline_assets.kafka import messages
from pipeline_assets.raw.landing import landing_queries
from pipeline_assets.sensors import landing_file_sensor
from pipeline_assets.source import generator


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    folder = settings.landing_dir()
    folder.mkdir(parents=True)
    return folder


def settled(path: Path) -> Path:
    """Backdate a file's mtime so the sensor no longer waits for it to be fully copied."""
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def sensor_tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = landing_file_sensor(context)
    return result, result.cursor if isinstance(result, dg.SensorResult) else context.cursor


def ingest(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """The run the daemon makes of a request: tagged with its run key and the sensor's name."""
    tags = {"dagster/run_key": request.run_key, "dagster/sensor_name": "landing_file_sensor"}
    return dg.materialize(
        [landing_queries], run_config=request.run_config, instance=instance, tags=tags, raise_on_error=False
    )


def rows_of(source_prefix: str) -> pa.Table:
    rows = raw_rows()
    return rows.filter(pc.starts_with(rows.column("source_file"), source_prefix))


def test_landing_files_are_ingested_once_and_bad_ones_rejected(landing: Path) -> None:
    # A good parquet file with a deployment column.
    good_parquet = generator.generate(3_000, seed=31)
    generator.write(good_parquet, landing / "march.parquet")
    # A good csv file in Redset's own columns: the deployment comes from its name. One row
    # has an empty query_type: a dead letter, not a reason to reject the file.
    serverless = generator.generate(2_000, seed=32, deployment="serverless")
    csv_rows = serverless.drop_columns(["deployment"])
    csv_rows = csv_rows.set_column(
        csv_rows.schema.get_field_index("query_type"),
        "query_type",
        pc.if_else(pa.array([i == 17 for i in range(2_000)]), None, csv_rows.column("query_type")),
    )
    pa_csv.write_csv(csv_rows, landing / "serverless-april.csv")
    # A good ndjson file, in the producer's JSON encoding.
    ndjson_rows = generator.generate(500, seed=33)
    _, values = messages.encode(ndjson_rows.combine_chunks().to_batches()[0])
    (landing / "may.ndjson").write_text("\n".join(values.to_pylist()) + "\n")
    # A parquet file without the query_id column, and a truncated parquet file.
    pq.write_table(good_parquet.drop_columns(["query_id"]), landing / "no-query-id.parquet")
    whole = (landing / "march.parquet").read_bytes()
    (landing / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    for f in landing.iterdir():
        settled(f)
    # A file still being written (hidden name) is left alone.
    (landing / ".incoming.parquet").write_bytes(b"partial")

    instance = dg.DagsterInstance.ephemeral()
    result, cursor = sensor_tick(instance, None)
    assert isinstance(result, dg.SensorResult)
    requests = {Path(r.run_config["ops"]["landing_queries"]["config"]["path"]).name: r for r in result.run_requests}
    good = {"march.parquet", "serverless-april.csv", "may.ndjson"}
    assert set(requests) == good | {"no-query-id.parquet", "truncated.parquet"}
    for name, request in requests.items():
        st = (landing / name).stat()
        assert request.run_key == f"{name}:{st.st_size}:{st.st_mtime_ns}"
    assert set(json.loads(cursor)) == set(requests)
    # The cursor remembers name, size and mtime: the next tick asks for nothing new. Until the
    # daemon has made the runs (ingest() below), it asks for the same keys: the daemon drops repeats.
    again, _ = sensor_tick(instance, cursor)
    assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in requests.values())

    outcomes = {name: ingest(instance, request) for name, request in requests.items()}

    # Good files: every row once, with source_file and source_row, no Kafka metadata.
    assert outcomes["march.parquet"].success
    march = rows_of("march.parquet@")
    assert march.num_rows == 3_000
    assert march.column("source_row").to_pylist() == sorted(march.column("source_row").to_pylist())
    assert sorted(march.column("source_row").to_pylist()) == list(range(3_000))
    order = [("deployment", "ascending"), ("instance_id", "ascending"), ("query_id", "ascending")]
    expected = good_parquet.cast(schema.ARROW_SCHEMA).sort_by(order)
    assert march.select(schema.COLUMN_NAMES).sort_by(order).equals(expected)
    assert march.column("kafka_offset").null_count == 3_000 and march.column("kafka_topic").null_count == 3_000
    meta = outcomes["march.parquet"].asset_materializations_for_node("landing_queries")[0].metadata
    assert meta["rows_written"].value == 3_000
    days = pc.unique(pc.cast(good_parquet.column("arrival_timestamp"), pa.date32())).to_pylist()
    assert meta["arrival_dates"].value == sorted(d.isoformat() for d in days)

    assert outcomes["serverless-april.csv"].success
    april = rows_of("serverless-april.csv@")
    assert april.num_rows == 1_999
    assert set(april.column("deployment").to_pylist()) == {"serverless"}
    assert 17 not in april.column("source_row").to_pylist()
    [dead] = dead_rows().to_pylist()
    assert dead["field"] == "query_type" and "row 17" in dead["reason"] and dead["reason"].startswith("null_field")
    assert dead["source_file"].startswith("serverless-april.csv@") and dead["kafka_offset"] is None

    assert outcomes["may.ndjson"].success
    assert rows_of("may.ndjson@").num_rows == 500

    for name in good:
        assert (landing / "processed" / name).exists() and not (landing / name).exists()

    # Bad files: the run fails, the file moves to rejected/ with a note that says why.
    bad = {"no-query-id.parquet": "missing required columns: query_id", "truncated.parquet": "cannot be read"}
    for name, why in bad.items():
        assert not outcomes[name].success
        assert (landing / "rejected" / name).exists() and not (landing / name).exists()
        note = (landing / "rejected" / f"{name}.error.txt").read_text()
        assert name in note and why in note, note
        assert rows_of(f"{name}@").num_rows == 0

    # Exactly once: the same file dropped again lands on the same raw files, not beside them.
    before = raw_rows().num_rows
    shutil.copy(landing / "processed" / "march.parquet", landing / "march.parquet")
    settled(landing / "march.parquet")
    result, cursor = sensor_tick(instance, cursor)
    [request] = result.run_requests
    assert ingest(instance, request).success
    assert raw_rows().num_rows == before
    assert rows_of("march.parquet@").num_rows == 3_000

    final, _ = sensor_tick(instance, cursor)
    assert isinstance(final, dg.SkipReason)


def test_without_a_path_every_waiting_file_is_ingested(landing: Path) -> None:
    generator.write(generator.generate(100, seed=1), landing / "a.parquet")
    generator.write(generator.generate(200, seed=2), landing / "b.parquet")
    result = dg.materialize([landing_queries], instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert raw_rows().num_rows == 300
    assert sorted(p.name for p in (landing / "processed").iterdir()) == ["a.parquet", "b.parquet"]
