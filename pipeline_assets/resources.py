"""Dagster resources: the Kafka clients of the raw dump and the lag sensor.

Configured like every other Kafka client of the project (kafka/config.py): KAFKA_BOOTSTRAP_SERVERS
and the other KAFKA_* variables of the environment, read when a client is made. A field set
here wins over the environment, e.g. `KafkaResource(bootstrap_servers=dg.EnvVar("MY_BROKERS"))`.
"""

from __future__ import annotations

import dagster as dg
from confluent_kafka import Consumer

from pipeline_assets.kafka.config import client_config


class KafkaResource(dg.ConfigurableResource):
    """Makes consumers with the project's client configuration."""

    bootstrap_servers: str | None = None

    def client_config(self, **overrides: object) -> dict[str, object]:
        config = client_config()
        if self.bootstrap_servers:
            config["bootstrap.servers"] = self.bootstrap_servers
        config.update(overrides)
        return config

    def consumer(self, group_id: str, **overrides: object) -> Consumer:
        """A consumer of `group_id` that never commits on its own (the caller decides when)."""
        return Consumer(
            self.client_config(
                **{
                    "group.id": group_id,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    **overrides,
                }
            )
        )
