"""Client settings from KAFKA_* variables (pure: no broker)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer, KafkaException, Producer

from pipeline_assets.kafka import config as kafka_config
from pipeline_assets.kafka.config import DEFAULT_BOOTSTRAP, client_config, client_settings
from pipeline_assets.kafka.librdkafka_properties import CLIENT_PROPERTIES, CONSUMER, PRODUCER


def test_default_bootstrap_is_the_local_broker() -> None:
    assert client_config({}) == {"bootstrap.servers": DEFAULT_BOOTSTRAP}
    assert DEFAULT_BOOTSTRAP == "127.0.0.1:9092"


def test_kafka_variables_become_librdkafka_settings() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9093,broker-2:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD": "s3cr=t",
        "KAFKA_SSL_CA_LOCATION": "/etc/ssl/ca.pem",
        "PATH": "/usr/bin",  # not ours
        "MY_KAFKA_THING": "x",  # not a KAFKA_ prefix
    }
    assert client_config(env) == {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": "s3cr=t",
        "ssl.ca.location": "/etc/ssl/ca.pem",
    }


def test_empty_values_and_kafka_script_variables_are_skipped() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "KAFKA_CLIENT_ID": "",
        "KAFKA_HOME": "/opt/kafka",
        "KAFKA_OPTS": "-Dx=y",
        "KAFKA_HEAP_OPTS": "-Xmx1G",
        "KAFKA_JMX_OPTS": "-Dcom.sun.management.jmxremote",
    }
    assert client_config(env) == {"bootstrap.servers": DEFAULT_BOOTSTRAP}


def test_overrides_win_over_the_environment() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "a:1", "KAFKA_CLIENT_ID": "from-env"}
    config = client_config(env, **{"bootstrap.servers": "b:2", "client.id": "explicit"})
    assert config == {"bootstrap.servers": "b:2", "client.id": "explicit"}


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.7:9092")
    monkeypatch.setenv("KAFKA_LINGER_MS", "5")
    config = client_config()
    assert config["bootstrap.servers"] == "10.0.0.7:9092"
    assert config["linger.ms"] == "5"


def test_librdkafka_accepts_the_translated_names() -> None:
    """The names we make are real librdkafka properties (it rejects unknown ones)."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD": "secret",
        "KAFKA_MESSAGE_TIMEOUT_MS": "1000",
    }
    Producer(client_config(env)).flush(0)  # builds the client; nothing is sent
    with pytest.raises(KafkaException, match="No such configuration property"):
        Producer({"not.a.setting": "1"})


def test_every_listed_property_is_known_to_the_bundled_librdkafka() -> None:
    """The list is copied from a document: each name must be one the installed librdkafka has
    (a known one with a bad value is "Invalid value", an unknown one "No such configuration property")."""
    quiet = logging.getLogger("test.librdkafka")  # its log lines go here, not to stderr
    unknown = []
    for name in sorted(CLIENT_PROPERTIES):
        try:
            Consumer({"group.id": "g", "logger": quiet, name: "\x01"}).close()  # producer-only ones: a warning
        except KafkaException as exc:
            if "No such configuration property" in str(exc):
                unknown.append(name)
    assert unknown == []


def test_only_documented_client_settings_pass_and_the_rest_are_named() -> None:
    """A Kafka container's broker settings (KAFKA_LISTENERS, ...) are not client settings: they are
    left out and listed; documented ones pass, including the `_` names and role-specific ones."""
    env = {
        "KAFKA_LISTENERS": "PLAINTEXT://:9092",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LOG_LEVEL": "3",  # librdkafka's log_level, written with `_`
        "KAFKA_AUTO_OFFSET_RESET": "earliest",  # consumer only
        "KAFKA_LINGER_MS": "5",  # producer only
        "KAFKA_HEAP_OPTS": "-Xmx1G",  # Kafka's scripts: skipped, not named
        "KAFKA_BOOTSTRAP_SERVERS": "a:1",
    }
    config, ignored = client_settings(env)
    assert config == {"log_level": "3", "auto.offset.reset": "earliest", "linger.ms": "5"}
    assert ignored == ["KAFKA_LISTENERS", "KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES"]
    assert "auto.offset.reset" in CONSUMER and "linger.ms" in PRODUCER


def test_one_warning_line_names_the_ignored_variables(caplog: pytest.LogCaptureFixture) -> None:
    env = {"KAFKA_LISTENERS": "PLAINTEXT://:9092", "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://x:9092", "KAFKA_CLIENT_ID": "c"}
    kafka_config._warned.clear()
    with caplog.at_level("WARNING", logger=kafka_config.__name__):
        config = client_config(env)
        client_config(env)  # a second client: no second line
    assert config == {"bootstrap.servers": DEFAULT_BOOTSTRAP, "client.id": "c"}
    lines = [r.getMessage() for r in caplog.records if r.name == kafka_config.__name__]
    assert len(lines) == 1
    assert lines[0].startswith("ignoring KAFKA_ADVERTISED_LISTENERS, KAFKA_LISTENERS: not librdkafka client settings")
    Producer(config).flush(0)  # what is left, librdkafka accepts
