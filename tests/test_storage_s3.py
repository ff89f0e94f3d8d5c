"""Object storage: the project's S3 server (`redset s3`), REDSET_STORAGE_URL's zones, and the check a dump
makes first: against the real S3Proxy of the session (conftest's s3_server), never a fake."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from raw_support import group_offsets, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.cli.main import main as redset
from pipeline_assets.kafka import producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.runtime.ports import free_ports
from pipeline_assets.s3 import server
from pipeline_assets.source import generator
from pipeline_assets.storage import filesystem
from pipeline_assets.storage.location import StorageError


def test_zones_follow_the_storage_url_and_their_own_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    for variable in ("REDSET_STORAGE_URL", "REDSET_RAW_DIR", "REDSET_SERVING_DIR"):
        monkeypatch.delenv(variable, raising=False)
    assert settings.raw_dir() == tmp_path / "data" / "raw"  # today's default
    monkeypatch.setenv("REDSET_STORAGE_URL", str(tmp_path / "zones"))
    assert (settings.raw_dir(), settings.spark_warehouse()) == (tmp_path / "zones/raw", tmp_path / "zones/spark-warehouse")
    assert settings.warehouse_path() == tmp_path / "data" / "warehouse.duckdb"  # not a zone: stays local

    monkeypatch.setenv("REDSET_STORAGE_URL", "s3://bucket/some/prefix/")
    monkeypatch.setenv("REDSET_SERVING_DIR", str(tmp_path / "served"))
    assert settings.zone_url("raw") == "s3://bucket/some/prefix/raw"
    assert settings.zone_url("dead_letters") == "s3://bucket/some/prefix/dead_letters"
    assert settings.serving_dir() == tmp_path / "served"  # its own variable wins
    with pytest.raises(StorageError, match=r"s3://bucket/some/prefix/raw.*REDSET_RAW_DIR"):
        settings.raw_dir()  # a step that works on local disk only says so
    for bad, says in (("s3:///no-bucket", "needs a bucket"), ("gs://b/p", "not supported")):
        monkeypatch.setenv("REDSET_STORAGE_URL", bad)
        with pytest.raises(StorageError, match=says):
            settings.zone_url("raw")


def test_s3_status_prints_the_exports_and_the_secret_only_when_asked(s3_server, monkeypatch, capsys):
    monkeypatch.setenv("REDSET_S3_HOME", str(s3_server.home))
    secret = s3_server.environment()["AWS_SECRET_ACCESS_KEY"]
    assert redset(["s3", "status"]) == 0
    out = capsys.readouterr().out
    assert f"export AWS_ENDPOINT_URL={s3_server.endpoint}" in out and "export AWS_ACCESS_KEY_ID=redset-local" in out
    assert secret not in out and "--show-secret" in out
    assert redset(["s3", "status", "--show-secret"]) == 0
    assert f"export AWS_SECRET_ACCESS_KEY={secret}" in capsys.readouterr().out
    assert f"AWS_SECRET_ACCESS_KEY={secret}" in (s3_server.home / "aws.env").read_text()
    assert (s3_server.home / "aws.env").stat().st_mode & 0o077 == 0  # the env file is private


def test_s3_start_on_a_taken_port_says_so(s3_server, tmp_path):
    with pytest.raises(server.ServerError, match=f"port {s3_server.port} .* taken"):
        server.start(port=s3_server.port, home=tmp_path / "other", quiet=True)


def test_s3_storage_check_names_the_url_and_never_the_secret(s3_env, monkeypatch):
    secret = s3_env.environment()["AWS_SECRET_ACCESS_KEY"]
    filesystem.check("s3://redset/zones/raw")  # answers: no error

    def failure(url: str) -> str:
        with pytest.raises(StorageError) as raised:
            filesystem.check(url)
        message = str(raised.value)
        assert url in message and secret not in message and "\n" not in message
        return message

    assert "bucket 'no-such-bucket' does not exist" in failure("s3://no-such-bucket/zones")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    assert "access denied" in failure("s3://redset/zones/raw")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_ports(1)[0]}")
    assert "no answer from the S3 endpoint" in failure("s3://redset/zones/raw")


@pytest.mark.kafka
def test_s3_dump_with_a_missing_bucket_fails_before_consuming(
    s3_env, kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    source = generator.write(generator.generate(50, seed=5), tmp_path / "rows.parquet")
    assert producer.produce(source, kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0
    monkeypatch.setenv("REDSET_STORAGE_URL", "s3://no-such-bucket/zones")
    result = dg.materialize(
        [raw_queries], resources={"kafka": KafkaResource()}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("s3://no-such-bucket/zones/raw") and "does not exist" in description
    assert all(o.committed is None for o in group_offsets(kafka_broker, kafka_topic, group))  # nothing consumed
