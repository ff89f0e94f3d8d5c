"""The Redset reader: files in the shapes Amazon publishes, typed to the one schema, in order."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from pipeline_assets import schema
from pipeline_assets.source import fetch, generator, reader
from pipeline_assets.source.conform import SchemaError, conform

ROWS = 5_000


@pytest.fixture(scope="module")
def generated() -> pa.Table:
    """Provisioned rows in arrival order, as the generator types them."""
    return generator.generate(ROWS, seed=5, deployment="provisioned")


def redset_shaped(table: pa.Table, *, int_bools: bool = False, seed: int = 0) -> pa.Table:
    """`table` as a real Redset file stores it: no deployment column, rows not in arrival
    order, integer megabytes, and (in some copies) 0/1 integers for the booleans."""
    out = table.drop_columns(["deployment"])
    out = out.take(np.random.default_rng(seed).permutation(out.num_rows))
    for name in ("mbytes_scanned", "mbytes_spilled"):
        out = out.set_column(out.schema.get_field_index(name), name, pc.cast(out[name], pa.int64()))
    if int_bools:
        for name in ("was_aborted", "was_cached"):
            out = out.set_column(out.schema.get_field_index(name), name, pc.cast(out[name], pa.int8()))
    return out


def write(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def empty_ids_as_null(table: pa.Table) -> pa.Table:
    for name in ("read_table_ids", "write_table_ids"):
        column = pc.if_else(pc.equal(table[name], ""), pa.scalar(None, pa.string()), table[name])
        table = table.set_column(table.schema.get_field_index(name), table.schema.field(name), column)
    return table


def read_all(source, **kwargs) -> pa.Table:
    return pa.Table.from_batches(list(reader.iter_batches(source, **kwargs)), schema=schema.ARROW_SCHEMA)


def by_key(table: pa.Table) -> pa.Table:
    return table.sort_by([("instance_id", "ascending"), ("query_id", "ascending")])


@pytest.mark.parametrize("int_bools", [False, True], ids=["bool", "0/1"])
def test_reads_real_shape_in_order_with_deployment(tmp_path, generated, int_bools):
    path = write(redset_shaped(generated, int_bools=int_bools), tmp_path / "provisioned" / "sample_0.01.parquet")
    got = read_all(path, batch_rows=700)

    assert got.schema.equals(schema.ARROW_SCHEMA)
    assert got.num_rows == ROWS
    ts = got["arrival_timestamp"].to_numpy().astype(np.int64)
    assert (np.diff(ts) >= 0).all()
    assert set(got["deployment"].to_pylist()) == {"provisioned"}
    # Every value comes back as generated (0/1 ints as booleans, int MB as floats).
    assert by_key(got).equals(by_key(generated))


def test_batches_respect_batch_rows(tmp_path, generated):
    path = write(redset_shaped(generated), tmp_path / "provisioned.parquet")
    sizes = [b.num_rows for b in reader.iter_batches(path, batch_rows=1_000)]
    assert sum(sizes) == ROWS
    assert max(sizes) <= 1_000


def test_null_and_empty_table_ids_are_kept(tmp_path, generated):
    path = write(redset_shaped(generated), tmp_path / "provisioned.parquet")
    got = read_all(path)
    for name in ("read_table_ids", "write_table_ids"):
        assert got[name].null_count == generated[name].null_count > 0
        empties = pc.sum(pc.equal(got[name], "")).as_py()
        assert empties == pc.sum(pc.equal(generated[name], "")).as_py() > 0


def test_limit_gives_the_earliest_rows(tmp_path, generated):
    path = write(redset_shaped(generated), tmp_path / "provisioned.parquet")
    full = read_all(path)
    first = read_all(path, limit=123, batch_rows=50)
    assert first.num_rows == 123
    assert first.equals(full.slice(0, 123))
    assert read_all(path, limit=0).num_rows == 0


def test_instance_filter(tmp_path, generated):
    path = write(redset_shaped(generated), tmp_path / "provisioned.parquet")
    ids = sorted(set(generated["instance_id"].to_pylist()))[:2]
    got = read_all(path, instances=ids)
    expected = pc.sum(pc.is_in(generated["instance_id"], pa.array(ids))).as_py()
    assert got.num_rows == expected > 0
    assert set(got["instance_id"].to_pylist()) == set(ids)
    assert read_all(path, instances=[]).num_rows == 0


def test_folder_of_part_files_is_merged_in_arrival_order(tmp_path, generated):
    shaped = redset_shaped(generated)
    instance_ids = sorted(set(shaped["instance_id"].to_pylist()))
    parts = tmp_path / "serverless" / "parts"
    for i in instance_ids:
        write(shaped.filter(pc.equal(shaped["instance_id"], i)), parts / f"{i}.parquet")
    (parts / ".in-progress.parquet").write_bytes(b"half a file")  # writers' temp names are skipped
    got = read_all(parts)
    assert got.num_rows == ROWS
    assert (np.diff(got["arrival_timestamp"].to_numpy().astype(np.int64)) >= 0).all()
    assert set(got["deployment"].to_pylist()) == {"serverless"}


def test_deployment_inferred_given_or_missing(tmp_path, generated):
    shaped = redset_shaped(generated)
    serverless = write(shaped, tmp_path / "redset" / "serverless" / "full.parquet")
    assert set(read_all(serverless, limit=10)["deployment"].to_pylist()) == {"serverless"}

    anonymous = write(shaped, tmp_path / "queries.parquet")
    with pytest.raises(SchemaError) as err:
        read_all(anonymous)
    assert str(anonymous) in str(err.value) and "deployment" in str(err.value)
    given = read_all(anonymous, deployment="serverless", limit=10)
    assert set(given["deployment"].to_pylist()) == {"serverless"}


def test_deployment_column_of_generated_files_is_kept_and_filters(tmp_path):
    both = generator.write(generator.generate(4_000, seed=2), tmp_path / "synthetic.parquet")
    got = read_all(both)
    assert set(got["deployment"].to_pylist()) == {"provisioned", "serverless"}
    only = read_all(both, deployment="serverless")
    assert set(only["deployment"].to_pylist()) == {"serverless"}
    assert only.num_rows == pc.sum(pc.equal(got["deployment"], "serverless")).as_py()


def test_missing_columns_are_named_with_the_file(tmp_path, generated):
    shaped = redset_shaped(generated).drop_columns(["query_id", "arrival_timestamp"])
    path = write(shaped, tmp_path / "provisioned.parquet")
    with pytest.raises(SchemaError) as err:
        read_all(path)
    message = str(err.value)
    assert str(path) in message
    assert "query_id" in message and "arrival_timestamp" in message


def test_optional_columns_may_be_missing(tmp_path, generated):
    shaped = redset_shaped(generated).drop_columns(["num_joins", "mbytes_spilled"])
    path = write(shaped, tmp_path / "provisioned.parquet")
    got = read_all(path, limit=5)
    assert got["num_joins"].null_count == 5 and got["mbytes_spilled"].null_count == 5


def test_wrong_types_are_named_with_the_file(tmp_path, generated):
    shaped = redset_shaped(generated)
    i = shaped.schema.get_field_index("query_id")
    shaped = shaped.set_column(i, "query_id", pc.cast(shaped["query_id"], pa.string()))
    j = shaped.schema.get_field_index("arrival_timestamp")
    shaped = shaped.set_column(j, "arrival_timestamp", pc.cast(shaped["query_id"], pa.float64()))
    path = write(shaped, tmp_path / "provisioned.parquet")
    with pytest.raises(SchemaError) as err:
        read_all(path)
    message = str(err.value)
    assert str(path) in message
    assert "query_id (string" in message and "arrival_timestamp (double" in message


def test_booleans_other_than_zero_one_are_refused(tmp_path, generated):
    shaped = redset_shaped(generated, int_bools=True)
    i = shaped.schema.get_field_index("was_aborted")
    shaped = shaped.set_column(i, "was_aborted", pa.array(np.full(ROWS, 2, np.int8)))
    path = write(shaped, tmp_path / "provisioned.parquet")
    with pytest.raises(SchemaError) as err:
        read_all(path)
    assert str(path) in str(err.value) and "was_aborted" in str(err.value)


def test_fractional_integers_are_refused():
    table = pa.table({"instance_id": [1], "query_id": [1.5], "arrival_timestamp": ["2024-03-01 00:00:00"],
                      "query_type": ["select"]})
    with pytest.raises(SchemaError, match="x.csv.*query_id"):
        conform(table, "x.csv", "provisioned")


def test_conform_csv_and_ndjson(tmp_path, generated):
    sample = generated.slice(0, 200)
    csv_path = tmp_path / "landing.csv"
    shaped = redset_shaped(sample, int_bools=True)
    pacsv.write_csv(shaped, csv_path)
    from_csv = conform(pacsv.read_csv(csv_path), str(csv_path), "provisioned")
    # CSV cannot tell an empty table-id list from NULL (both are an empty field).
    assert by_key(empty_ids_as_null(from_csv)).equals(by_key(empty_ids_as_null(sample)))

    ndjson = tmp_path / "landing.ndjson"
    rows = redset_shaped(sample).to_pylist()
    ndjson.write_text("\n".join(json.dumps(r, default=str) for r in rows) + "\n")
    from_json = conform(pajson.read_json(ndjson), str(ndjson), "provisioned")
    assert by_key(from_json).equals(by_key(sample))


def test_conform_timezone_aware_and_string_booleans():
    table = pa.table(
        {
            "deployment": ["serverless", "serverless"],
            "instance_id": pa.array([3, 3], pa.int32()),
            "query_id": pa.array([1, 2], pa.uint32()),
            "arrival_timestamp": pa.array([0, 1_000], pa.timestamp("ms", tz="UTC")),
            "query_type": ["select", "copy"],
            "was_cached": ["True", None],
            "read_table_ids": pa.array([19, None], pa.int64()),
        }
    )
    got = conform(table, "t")
    assert got.schema.equals(schema.ARROW_SCHEMA)
    assert got["was_cached"].to_pylist() == [True, None]
    assert got["read_table_ids"].to_pylist() == ["19", None]
    assert got["arrival_timestamp"].to_pylist()[1].microsecond == 0
    assert got["arrival_timestamp"].to_pylist()[1].second == 1


@pytest.fixture()
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_url_is_downloaded_once_to_the_cache(tmp_path, generated, http_root, monkeypatch):
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REDSET_INSECURE_HTTP", "1")  # the test server speaks plain http
    root, base = http_root
    write(redset_shaped(generated), root / "redset" / "serverless" / "sample_0.001.parquet")
    url = f"{base}/redset/serverless/sample_0.001.parquet"

    got = read_all(url)
    assert got.num_rows == ROWS
    assert set(got["deployment"].to_pylist()) == {"serverless"}
    cached = fetch.cache_path(url)
    assert cached.is_relative_to(tmp_path / "data" / "cache") and cached.exists()

    (root / "redset" / "serverless" / "sample_0.001.parquet").unlink()  # the cache answers now
    assert read_all(url, limit=3).num_rows == 3


def test_conform_pandas_nan_and_nanosecond_timestamps():
    table = pa.table(
        {
            "instance_id": [1.0, 2.0],  # pandas writes nullable ints as floats
            "query_id": [10, 11],
            "arrival_timestamp": pa.array([1_000_000_001, 2_000_000_000], pa.timestamp("ns")),
            "query_type": ["select", "select"],
            "compile_duration_ms": [float("nan"), 5.0],
            "mbytes_scanned": [float("nan"), 1.5],
        }
    )
    got = conform(table, "pandas.parquet", "provisioned")
    assert got["instance_id"].to_pylist() == [1, 2]
    assert got["compile_duration_ms"].to_pylist() == [None, 5]
    assert got["mbytes_scanned"].to_pylist() == [None, 1.5]  # NaN would not survive JSON
    assert got["arrival_timestamp"].to_pylist()[0].microsecond == 0  # 1 ns dropped, not an error


def test_plain_http_source_needs_insecure(tmp_path, generated, http_root, monkeypatch, capsys):
    from pipeline_assets.cli.main import main

    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REDSET_INSECURE_HTTP", raising=False)
    root, base = http_root
    write(redset_shaped(generated), root / "serverless.parquet")
    with pytest.raises(fetch.UnsafeSource, match="plain http: use https, or pass --insecure"):
        read_all(f"{base}/serverless.parquet")
    assert not (tmp_path / "data" / "cache").exists()  # nothing was fetched
    assert main(["produce", "--source", f"{base}/serverless.parquet", "--limit", "1"]) == 1
    assert "pass --insecure" in capsys.readouterr().err
    monkeypatch.setenv("REDSET_INSECURE_HTTP", "1")  # what --insecure sets
    assert read_all(f"{base}/serverless.parquet", limit=2).num_rows == 2


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/../../escaped.parquet",
        "https://example.com/a/%2e%2e/%2E%2E/%2e%2e/escaped.parquet",
        "https://example.com/a/..%2f..%2fescaped.parquet",
        "https://../escaped.parquet",
        "https://example.com",
    ],
)
def test_a_source_url_cannot_write_outside_the_cache(tmp_path, monkeypatch, url):
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(fetch.UnsafeSource):
        fetch.cache_path(url)
    with pytest.raises(fetch.UnsafeSource):
        fetch.download(url)
    assert not any(tmp_path.rglob("*escaped*"))


def test_a_plain_source_url_stays_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    path = fetch.cache_path("https://s3.amazonaws.com:443/redshift-downloads/redset/serverless/sample_0.001.parquet")
    assert path == tmp_path / "data" / "cache" / "s3.amazonaws.com:443" / "redshift-downloads/redset/serverless/sample_0.001.parquet"
