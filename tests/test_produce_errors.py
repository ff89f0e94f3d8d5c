"""`redset produce` failing as a user sees it: one clear line on stderr, and an unusable source
fails before anything touches Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import AdminClient
from conftest import free_ports

from pipeline_assets.cli import main as cli
from pipeline_assets.source import generator

ROOT = Path(__file__).resolve().parent.parent
# The real CLI in a process of its own (librdkafka writes to the process's stderr), with the
# topic check's 15 s wait for an unreachable broker cut to 2 s.
CLI_WITH_SHORT_ADMIN_TIMEOUT = """
import sys
from pipeline_assets.cli import main as cli
from pipeline_assets.kafka import producer
producer.ADMIN_TIMEOUT_S = 2.0
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def small_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generator.write(generator.generate(50, seed=1), tmp_path_factory.mktemp("errors") / "small.parquet")


def redset(*args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return subprocess.run(
        [sys.executable, "-c", CLI_WITH_SHORT_ADMIN_TIMEOUT, *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_no_broker_is_one_clear_line_and_librdkafka_speaks_only_with_v(small_source: Path) -> None:
    (port,) = free_ports(1)  # nothing listens there
    where = f"127.0.0.1:{port}"
    produce = ["produce", "--source", str(small_source), "--topic", "test.nobroker"]

    quiet = redset(*produce, bootstrap=where)
    assert quiet.returncode == 1
    assert f"redset produce: cannot reach Kafka at {where}" in quiet.stderr
    assert "redset kafka start" in quiet.stderr
    assert "Connect to ipv4#" not in quiet.stderr, quiet.stderr

    verbose = redset("-v", *produce, bootstrap=where)
    assert verbose.returncode == 1
    assert f"Connect to ipv4#{where} failed" in verbose.stderr, verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].startswith(f"redset produce: cannot reach Kafka at {where}")


def test_verbose_goes_before_or_after_the_subcommand() -> None:
    parse = cli.build_parser().parse_args
    assert parse(["-v", "kafka", "status"]).verbose
    assert parse(["kafka", "status", "--verbose"]).verbose
    assert not parse(["kafka", "status"]).verbose


@pytest.mark.kafka
def test_a_source_missing_columns_fails_before_the_topic_is_made(
    kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = tmp_path / "partial.parquet"
    pq.write_table(generator.generate(20, seed=2).drop_columns(["query_id", "arrival_timestamp"]), partial)
    topic = f"test.unusable.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker)

    assert cli.main(["produce", "--source", str(partial), "--topic", topic]) == 1
    err = capsys.readouterr().err
    assert f"redset produce: {partial}: missing required columns: " in err, err
    missing = err.split("missing required columns: ")[1].split(";")[0].strip().split(", ")
    assert sorted(missing) == ["arrival_timestamp", "query_id"]
    assert topic not in AdminClient({"bootstrap.servers": kafka_broker}).list_topics(timeout=10).topics
