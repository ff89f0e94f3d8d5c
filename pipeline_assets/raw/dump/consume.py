"""The raw dump's consume loop: the run's plan, then messages from Kafka in chunks to a worker.

One run reads the group's committed offsets and the high watermarks (offsets.py) and takes the
messages between them, at most `max_messages`. This thread consumes, in chunks of `chunk_size`
messages or `chunk_bytes` (REDSET_RAW_CHUNK_BYTES) of values, whichever is reached first (memory
stays bounded whatever the message sizes: the backlog is never held); the worker thread (worker.py) builds
each chunk's tables (chunk.py; isolation.py in isolation mode) and hands them to the checkpoint
(checkpoint.py), which makes them durable and commits every `commit_every` messages and at the end.
A partition that reaches its planned end is paused; no message for `idle_timeout_s` while some
are still planned stops the run (DumpStalled) after a checkpoint of what was consumed.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from tqdm import tqdm

from pipeline_assets import lost_offsets
from pipeline_assets.alerts import send_alert
from pipeline_assets.kafka import offsets
from pipeline_assets.raw import zone
from pipeline_assets.raw.dump import generation, isolation
from pipeline_assets.raw.dump.checkpoint import Checkpoint
from pipeline_assets.raw.dump.chunk import Chunk, chunk_tables
from pipeline_assets.raw.dump.gc_pause import young_objects_only_gc
from pipeline_assets.raw.dump.options import DumpOptions, DumpStats
from pipeline_assets.raw.dump.worker import Worker

# librdkafka settings of the dump's consumer: large fetches for throughput, quick reconnects
# when the broker restarts, and a bounded prefetch queue (part of the memory budget).
CONSUMER_TUNING: dict[str, object] = {
    "fetch.max.bytes": 16 << 20,
    "max.partition.fetch.bytes": 4 << 20,
    "queued.max.messages.kbytes": 32 << 10,
    "reconnect.backoff.ms": 100,
    "reconnect.backoff.max.ms": 1000,
    "enable.partition.eof": False,
}
FETCH_BATCH = 10_000  # messages per consume() call
# The first call's: consume() keeps taking what librdkafka refills until it has num_messages, so
# a call is sized by the bytes per message seen so far, and the first, before any, by this.
FIRST_BATCH = 16
POLL_TIMEOUT_S = 0.5


class DumpStalled(RuntimeError):
    """No message arrived for `idle_timeout_s` although the partitions still lag."""


def dump(consumer: Consumer, options: DumpOptions, log: Callable[[str], Any] = print) -> DumpStats:
    """Consume the group's new messages into the raw zone; see the module docstring."""
    return _Dump(consumer, options, log).run()


class _Dump:
    def __init__(self, consumer: Consumer, options: DumpOptions, log: Callable[[str], Any]) -> None:
        self.consumer = consumer
        self.o = options
        self.log = log
        self.stats = DumpStats()
        self.checkpoint = Checkpoint(consumer, options, self.stats, log)
        self.paused: set[int] = set()
        self.seen_bytes = 0  # of the values consumed: sizes the next consume() call

    def run(self) -> DumpStats:
        started = time.monotonic()
        for root in (self.o.raw_dir, self.o.dead_letter_dir):
            zone.remove_stale_temp_files(root)
        plan = generation.checked_plan(
            self.consumer, offsets.partition_offsets(self.consumer, self.o.topic), topic=self.o.topic,
            topic_id=self.o.topic_id, raw_dir=self.o.raw_dir, new_generation=self.o.new_generation, log=self.log,
        )  # fmt: skip
        plan = self._mine(plan)
        self.end = {p.partition: p.high for p in plan}
        self.stats.skipped = {
            p.partition: p.low - p.committed for p in plan if p.committed is not None and p.committed < p.low
        }
        for p in plan:
            if p.partition in self.stats.skipped:
                self._lost_upstream(p.partition, p.committed, p.low)
        limit = min(self.o.max_messages, offsets.total_lag(plan))
        todo = [TopicPartition(self.o.topic, p.partition, p.start) for p in plan if p.lag > 0]
        self.log(f"{self.o.topic}: {offsets.total_lag(plan):,} messages waiting; this run takes {limit:,}")
        if limit > 0:
            self.consumer.assign(todo)
            try:
                self._consume(todo, limit)
            finally:
                self.checkpoint.abort()  # no-op after a clean final checkpoint
        self.stats.summary.seconds = time.monotonic() - started
        after = self._mine(offsets.partition_offsets(self.consumer, self.o.topic))
        self.stats.lag_after = {p.partition: p.lag for p in after}
        return self.stats

    def _lost_upstream(self, partition: int, first: int, end: int) -> None:
        """Offsets first..end-1 that retention deleted before they were read: recorded and alerted
        once (lost_offsets.py), before any commit moves past them."""
        message = f"partition {partition}: offsets {first}..{end - 1} ({end - first:,}) were deleted by retention before they were read"
        self.log(message)
        if lost_offsets.record(self.o.raw_dir, self.o.topic, partition, first, end, self.o.topic_id):
            send_alert("lost_upstream", message, topic=self.o.topic, partition=partition, first=first, end=end)

    def _mine(self, plan: list[offsets.PartitionOffsets]) -> list[offsets.PartitionOffsets]:
        """The partitions this consumer owns (all unless it is one of parallel_dump's)."""
        if self.o.partitions is None:
            return plan
        return [p for p in plan if p.partition in self.o.partitions]

    def _consume(self, assigned: list[TopicPartition], limit: int) -> None:
        """Consume on this thread; parse, write and commit on the worker's (see worker.py)."""
        chunk = Chunk()
        consumed = 0
        idle_since = time.monotonic()
        positions = self._positions(assigned)
        bar = tqdm(total=limit, unit=" msg", unit_scale=True, desc=f"dump {self.o.topic}", disable=None)
        with bar, young_objects_only_gc(), Worker(self._handle, depth=2) as worker:
            while consumed < limit and not self._caught_up(assigned, positions):
                want = min(FETCH_BATCH, limit - consumed, self.o.chunk_size - len(chunk), self._room(chunk, consumed))
                batch = self._without_errors(self.consumer.consume(num_messages=want, timeout=POLL_TIMEOUT_S))
                positions = self._positions(assigned)
                worker.check()
                if not batch:
                    if time.monotonic() - idle_since > self.o.idle_timeout_s:
                        worker.put((chunk, True))
                        worker.close()  # checkpoints what was consumed, so that is not lost
                        raise DumpStalled(
                            f"no message from {self.o.topic} for {self.o.idle_timeout_s:.0f}s although "
                            f"{limit - consumed:,} of this run's messages are still waiting"
                        )
                    continue
                idle_since = time.monotonic()
                batch = self._within_plan(batch, positions)
                self.seen_bytes += chunk.add(batch)
                consumed += len(batch)
                bar.update(len(batch))
                if len(chunk) >= self.o.chunk_size or chunk.nbytes >= self.o.chunk_bytes:
                    worker.put((chunk, False))
                    chunk = Chunk()
            worker.put((chunk, True))

    def _room(self, chunk: Chunk, consumed: int) -> int:
        """Messages of the run's average size so far that still fit the chunk's byte cap (>= 1)."""
        if not consumed:
            return FIRST_BATCH
        return max(1, int((self.o.chunk_bytes - chunk.nbytes) * consumed / max(self.seen_bytes, 1)))

    def _handle(self, item: tuple[Chunk, bool]) -> None:
        """Worker thread: a chunk's tables, all built before any is written; a checkpoint every
        `commit_every` messages and after the last chunk."""
        chunk, last = item
        if len(chunk):
            now = datetime.now(UTC).replace(tzinfo=None)
            build = partial(chunk_tables, topic=self.o.topic, batch_id=self.o.batch_id, now=now)
            if self.o.isolate_failures:
                done = isolation.tables_isolating_failures(
                    chunk, build, topic=self.o.topic, batch_id=self.o.batch_id, now=now, log=self.log
                )
            else:
                done = [build(chunk)]
            for tables in done:
                self.checkpoint.write(tables)
            self.stats.messages += len(chunk)
        if last or self.checkpoint.due():
            self.checkpoint.save()

    def _without_errors(self, batch: list[Message]) -> list[Message]:
        if not any(map(Message.error, batch)):  # a KafkaError is truthy, None is not
            return batch
        good = []
        for m in batch:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.fatal() or err.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise KafkaException(err)
            elif err.code() != KafkaError._PARTITION_EOF:
                self.log(f"consumer error (retrying): {err.str()}")
        return good

    def _positions(self, assigned: list[TopicPartition]) -> dict[int, int]:
        """Next offset of each assigned partition (-1001 before its first message)."""
        return {tp.partition: tp.offset for tp in self.consumer.position(assigned)}

    def _within_plan(self, batch: list[Message], positions: dict[int, int]) -> list[Message]:
        """Drop messages produced after the run started: they are the next run's."""
        if all(positions[p] <= self.end[p] for p in positions):
            return batch  # the usual case, without looking at each message
        return [m for m in batch if m.offset() < self.end[m.partition()]]

    def _caught_up(self, assigned: list[TopicPartition], positions: dict[int, int]) -> bool:
        done = [tp for tp in assigned if positions[tp.partition] >= self.end[tp.partition]]
        newly = [tp for tp in done if tp.partition not in self.paused]
        if newly:
            self.consumer.pause(newly)  # stop fetching what this run will not take
            self.paused.update(tp.partition for tp in newly)
        return len(done) == len(assigned)
