"""KafkaResource in the code location: configured through dg.EnvVar, resolved when a run starts."""

from __future__ import annotations

import dagster as dg
import pytest

from pipeline_assets.kafka.config import DEFAULT_BOOTSTRAP
from pipeline_assets.kafka.resource import KafkaResource


def _config_in_a_run(resource: KafkaResource) -> dict[str, object]:
    seen = {}

    @dg.asset
    def probe(kafka: KafkaResource) -> None:
        seen.update(kafka.client_config())

    assert dg.materialize([probe], resources={"kafka": resource}).success
    return seen


def test_kafka_variables_become_env_vars_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9093",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_PASSWORD": "s3cr=t",
        "KAFKA_HOME": "/opt/kafka",  # a Kafka install's variable, not a client setting
        "PATH": "/usr/bin",
    }
    resource = KafkaResource.from_env(env)
    # What Dagster stores and shows: the variables' names.
    assert resource.bootstrap_servers == dg.EnvVar("KAFKA_BOOTSTRAP_SERVERS")
    assert resource.settings == {
        "security.protocol": dg.EnvVar("KAFKA_SECURITY_PROTOCOL"),
        "sasl.password": dg.EnvVar("KAFKA_SASL_PASSWORD"),
    }
    assert all(isinstance(v, dg.EnvVar) for v in resource.settings.values())
    # A run reads the values when it starts (here: changed since the code location loaded).
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "rotated")
    assert _config_in_a_run(resource) == {
        "bootstrap.servers": "broker-1:9093",
        "security.protocol": "SASL_SSL",
        "sasl.password": "rotated",
    }


def test_without_kafka_variables_the_local_broker_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    resource = KafkaResource.from_env({"KAFKA_BOOTSTRAP_SERVERS": "", "HOME": "/root"})
    assert resource.bootstrap_servers == DEFAULT_BOOTSTRAP and resource.settings == {}
    assert _config_in_a_run(resource) == {"bootstrap.servers": DEFAULT_BOOTSTRAP}


def test_the_code_location_uses_env_vars() -> None:
    from pipeline_assets.orchestration.definitions import defs

    kafka = defs.resources["kafka"]
    assert isinstance(kafka, KafkaResource) and kafka.settings is not None
