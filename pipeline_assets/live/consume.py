"""A live cycle's first step: what Kafka has, into the raw zone, with the raw dump's own code.

Each `take()` is one bounded raw dump (raw/kafka_consume.py `dump`): the group's messages from
its committed offsets to the high watermarks, at most settings.live_max_messages(), written as
typed rows and dead letters, made durable, and only then committed (raw/checkpoint.py). The
consumer stays open between cycles (no reconnect per cycle); it is assigned its partitions, so
no batch dump may run beside it (the lag sensor skips while live mode runs, see switch.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pipeline_assets import settings
from pipeline_assets.raw import offsets
from pipeline_assets.raw.dump_options import DumpOptions, DumpStats
from pipeline_assets.raw.kafka_consume import CONSUMER_TUNING, dump
from pipeline_assets.resources import KafkaResource

# Smaller chunks than a batch dump's: a cycle takes seconds' worth of messages, and its parsing
# overlaps consuming in chunks. One commit per cycle (commit_every above any cycle's size).
CHUNK_SIZE = 10_000
# The plan covers only messages already on the topic, so a pause this long means the broker is away.
IDLE_TIMEOUT_S = 60.0

_logger = logging.getLogger(__name__)


class LiveConsumer:
    """The live loop's Kafka consumer; `take()` once per cycle, `close()` at the end."""

    def __init__(self, kafka: KafkaResource | None = None, log: Callable[[str], Any] = _logger.debug) -> None:
        self.group = settings.consumer_group()
        self.consumer = (kafka or KafkaResource()).consumer(self.group, **CONSUMER_TUNING)
        self.log = log

    def options(self, batch_id: str) -> DumpOptions:
        max_messages = settings.live_max_messages()
        return DumpOptions(
            topic=settings.topic(),
            group_id=self.group,
            raw_dir=settings.raw_dir(),
            dead_letter_dir=settings.dead_letter_dir(),
            batch_id=batch_id,
            max_messages=max_messages,
            chunk_size=CHUNK_SIZE,
            commit_every=max_messages + 1,
            idle_timeout_s=IDLE_TIMEOUT_S,
        )

    def take(self, batch_id: str) -> tuple[DumpOptions, DumpStats]:
        """One bounded dump. A topic that does not exist yet is an empty take, not an error."""
        options = self.options(batch_id)
        try:
            stats = dump(self.consumer, options, log=self.log)
        except offsets.TopicMissing as exc:
            self.log(f"{exc}; waiting for it")
            stats = DumpStats()
        # dump() pauses each partition it caught up on; the next take assigns them afresh.
        self.consumer.unassign()
        return options, stats

    def close(self) -> None:
        self.consumer.close()  # auto-commit is off: closing commits nothing
