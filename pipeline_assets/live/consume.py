"""A live cycle's first step: what Kafka has, into the raw zone, with the raw dump's own code.

Each `take()` is one bounded raw dump (raw/dump/consume.py `dump`): the group's messages from
its committed offsets to the high watermarks, at most settings.live_max_messages(), written as
typed rows and dead letters, made durable, and only then committed (raw/dump/checkpoint.py). Each take
has a consumer of its own, as a batch dump run has: one kept open across cycles and re-assigned
stopped receiving after a long cycle (a minute of dbt) under a running producer. It is assigned
its partitions, so no batch dump may run beside it (the lag sensor skips while live mode runs,
see switch.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pipeline_assets import settings
from pipeline_assets.kafka import offsets, topic_ids
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.consume import CONSUMER_TUNING, dump
from pipeline_assets.raw.dump.options import DumpOptions, DumpStats, zone_folders

# Smaller chunks than a batch dump's: a cycle takes seconds' worth of messages, and its parsing
# overlaps consuming in chunks. One commit per cycle (commit_every above any cycle's size).
CHUNK_SIZE = 10_000
# The plan covers only messages already on the topic, so a pause this long means the broker is away.
IDLE_TIMEOUT_S = 60.0

_logger = logging.getLogger(__name__)


class LiveConsumer:
    """The live loop's Kafka side: `take()` once per cycle."""

    def __init__(self, kafka: KafkaResource | None = None, log: Callable[[str], Any] = _logger.debug,
                 new_generation: bool = False) -> None:  # fmt: skip
        self.group = settings.consumer_group()
        self.kafka = kafka or KafkaResource()
        self.log = log
        # After a topic reset: accept the re-created topic (raw/dump/generation.py) in the first take
        # that ends well, and only then, so a later reset in the same session stops again.
        self.new_generation = new_generation

    def options(self, batch_id: str) -> DumpOptions:
        max_messages = settings.live_max_messages()
        zone_folders()  # StorageError: one line, before anything is consumed
        # Live mode keeps its zones on local disk so far: a zone on s3:// is a StorageError naming it.
        raw_dir, dead_letter_dir = settings.raw_dir(), settings.dead_letter_dir()
        return DumpOptions(
            topic=settings.topic(),
            group_id=self.group,
            raw_dir=raw_dir,
            dead_letter_dir=dead_letter_dir,
            batch_id=batch_id,
            max_messages=max_messages,
            chunk_size=CHUNK_SIZE,
            commit_every=max_messages + 1,
            idle_timeout_s=IDLE_TIMEOUT_S,
            # Checked every cycle: a re-created topic stops the cycle (raw/dump/generation.py).
            topic_id=topic_ids.topic_id(self.kafka.client_config(), settings.topic()),
            new_generation=self.new_generation,
        )

    def take(self, batch_id: str) -> tuple[DumpOptions, DumpStats]:
        """One bounded dump. A topic that does not exist yet is an empty take, not an error."""
        options = self.options(batch_id)
        consumer = self.kafka.consumer(self.group, **CONSUMER_TUNING)
        try:
            stats = dump(consumer, options, log=self.log)
            self.new_generation = False
        except offsets.TopicMissing as exc:
            self.log(f"{exc}; waiting for it")
            stats = DumpStats()
        finally:
            close_within(consumer, log=self.log)  # auto-commit is off: closing commits nothing
        return options, stats
