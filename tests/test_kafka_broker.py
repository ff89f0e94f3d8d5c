"""The local broker's lifecycle, through the project's own broker module (real JVMs, own ports)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import free_ports, start_test_broker

from pipeline_assets import settings
from pipeline_assets.cli import main as cli
from pipeline_assets.kafka import broker, broker_config, jars
from pipeline_assets.runtime.ports import port_in_use


def free_port_and_next() -> int:
    """A free port whose successor is free too: `redset kafka start` puts the controller on port + 1,
    and another test running beside this one may hold any single port's neighbour."""
    for _ in range(100):
        port = free_ports(1)[0]
        if not port_in_use(port + 1):
            return port
    raise AssertionError("no free pair of neighbouring ports on 127.0.0.1")


def test_version_is_pinned_in_the_pom() -> None:
    assert jars.KAFKA_VERSION == "4.1.1"
    assert jars.jar_dir() == settings.kafka_home() / "jars" / "4.1.1"


def test_server_properties_suit_a_laptop(tmp_path: Path) -> None:
    text = broker_config.server_properties(tmp_path, 19092, 19093)
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == str(tmp_path / "data")
    for name, value in {
        "num.partitions": "3", "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1", "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
    }.items():  # fmt: skip
        assert props[name] == value, name


def test_port_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDSET_KAFKA_PORT", raising=False)
    assert broker.default_port() == 9092
    monkeypatch.setenv("REDSET_KAFKA_PORT", "29092")
    assert broker.default_port() == 29092


def test_missing_java_or_maven_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither java nor mvn on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    port, controller = free_ports(2)
    with pytest.raises(broker.BrokerError, match="apt-get install openjdk-17-jre-headless maven") as error:
        broker.start(port=port, controller_port=controller, home=tmp_path / "home", quiet=True)
    assert "`java` was not found" in str(error.value) and "docker/" in str(error.value)

    monkeypatch.setenv("REDSET_KAFKA_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(broker.BrokerError, match="`mvn` was not found"):
        jars.fetch_jars(quiet=True)


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(broker.BrokerError, match=f"port {taken} .* is taken"):
            broker.start(port=taken, controller_port=free_ports(1)[0], home=tmp_path, quiet=True)



def test_the_demo_names_a_taken_broker_port_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_assets.demo.processes import DemoError
    from pipeline_assets.demo.session import Demo

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        monkeypatch.setenv("REDSET_KAFKA_PORT", str(taken))
        monkeypatch.setenv("REDSET_KAFKA_HOME", str(tmp_path))
        demo = Demo(source=None, rows=1, speed=None)
        with pytest.raises(DemoError, match=f"port {taken} .* is taken .* REDSET_KAFKA_PORT"):
            demo.start_broker()
    assert not demo.started_broker

@pytest.mark.kafka
def test_start_status_stop_restart_keeps_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    first = start_test_broker(home)
    try:
        assert (home / "data" / "meta.properties").exists()
        cluster_id = (home / "cluster.id").read_text()
        admin = AdminClient({"bootstrap.servers": first.bootstrap})
        admin.create_topics([NewTopic("kept", 1, 1)])["kept"].result(30)
        producer = Producer({"bootstrap.servers": first.bootstrap})
        producer.produce("kept", b"survives a restart")
        assert producer.flush(30) == 0

        # A second start finds the running broker and says so.
        capsys.readouterr()
        again = broker.start(home=home)
        assert again == first
        assert "already running" in capsys.readouterr().out

        assert broker.status(home) == first
        out = capsys.readouterr().out
        assert f"pid:  {first.pid}" in out and str(first.port) in out and str(home / "logs" / "server.log") in out
        assert "answers metadata requests" in out
        assert (home / "logs" / "server.log").stat().st_size > 0
    finally:
        assert broker.stop(home, quiet=True)
    assert broker.status(home) is None
    assert "not running" in capsys.readouterr().out
    assert not broker.stop(home, quiet=True)  # stopping a stopped broker is fine

    # Again through the `redset kafka` command, on a new port: the same storage comes back.
    shared_jars = jars.jar_dir()
    monkeypatch.setattr(jars, "jar_dir", lambda: shared_jars)  # it follows REDSET_KAFKA_HOME otherwise
    monkeypatch.setenv("REDSET_KAFKA_HOME", str(home))
    monkeypatch.setenv("REDSET_KAFKA_PORT", str(free_port_and_next()))
    try:
        assert cli.main(["kafka", "start"]) == 0
        assert "is up on 127.0.0.1:" in capsys.readouterr().out
        assert cli.main(["kafka", "status"]) == 0
        second = broker.running()
        assert second is not None and second.pid != first.pid and second.port != first.port
        assert (home / "cluster.id").read_text() == cluster_id
        consumer = Consumer({"bootstrap.servers": second.bootstrap, "group.id": "restart-check"})
        consumer.assign([TopicPartition("kept", 0, 0)])
        msg = consumer.poll(30)
        consumer.close()
        assert msg is not None and msg.error() is None and msg.value() == b"survives a restart"
    finally:
        assert cli.main(["kafka", "stop"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert cli.main(["kafka", "status"]) == 3
