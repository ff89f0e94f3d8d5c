"""Dagster resources: the Kafka clients of the raw dump and the lag sensor.

The code location builds it with `KafkaResource.from_env()`: KAFKA_BOOTSTRAP_SERVERS and every
other KAFKA_* client variable (kafka/config.py) become `dg.EnvVar` fields, so a run reads them when
it starts and the UI shows variable names, never values such as a SASL password. Built bare,
`KafkaResource()` (tests, scripts) reads the same variables when it makes a client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
from confluent_kafka import Consumer

from pipeline_assets.kafka.config import DEFAULT_BOOTSTRAP, client_config, client_settings, warn_ignored

BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"


def _client_variables(env: Mapping[str, str]) -> dict[str, str]:
    """librdkafka setting -> the KAFKA_* variable that sets it, by kafka/config.py's own rules."""
    found = {}
    for name, value in env.items():
        if name == BOOTSTRAP_VARIABLE:
            continue
        setting, _ = client_settings({name: value})
        if setting:
            found[setting.popitem()[0]] = name
    return found


class KafkaResource(dg.ConfigurableResource):
    """Makes consumers with the project's client configuration."""

    bootstrap_servers: str | None = None  # None: KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092
    # Other librdkafka settings (security.protocol, sasl.username, ...); None: the KAFKA_* variables.
    settings: dict[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaResource:
        """Every KAFKA_* client variable set now, as an EnvVar; the local broker if none names one."""
        env = os.environ if env is None else env
        # An EnvVar must be set when a run starts; an unset bootstrap variable means the local broker.
        bootstrap = dg.EnvVar(BOOTSTRAP_VARIABLE) if env.get(BOOTSTRAP_VARIABLE) else DEFAULT_BOOTSTRAP
        settings = {setting: dg.EnvVar(name) for setting, name in _client_variables(env).items()}
        warn_ignored(client_settings(env)[1])
        return cls(bootstrap_servers=bootstrap, settings=settings)

    def client_config(self, **overrides: object) -> dict[str, object]:
        if self.settings is None:
            config = client_config()
        else:
            config = {"bootstrap.servers": DEFAULT_BOOTSTRAP, **self.settings}
        if self.bootstrap_servers:
            config["bootstrap.servers"] = self.bootstrap_servers
        config.update(overrides)
        return config

    def consumer(self, group_id: str, **overrides: object) -> Consumer:
        """A consumer of `group_id` that never commits on its own (the caller decides when)."""
        return Consumer(self.consumer_config(group_id, **overrides))

    def consumer_config(self, group_id: str, **overrides: object) -> dict[str, object]:
        """The settings of `consumer()`, as a plain dict (for a consumer in another process)."""
        return self.client_config(
            **{
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                **overrides,
            }
        )
