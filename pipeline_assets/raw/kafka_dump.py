"""The `raw_queries` asset: every new message of the topic, into the raw zone, exactly once in effect.

One run:
1. reads the group's committed offsets and the high watermarks (offsets.py); the run takes
   the messages between them, at most `max_messages`;
2. consumes in chunks of `chunk_size` messages (memory stays bounded: the backlog is never
   held), parses each chunk in bulk (parse.py, chunk.py) and streams the rows into the raw zone
   (zone.py) and the bad messages into the dead letters; in isolation mode (isolation.py) a
   message whose processing raises becomes a dead letter too;
3. every `commit_every` messages and at the end, makes the files durable (fsync, rename,
   fsync the folder) and only then commits the offsets, synchronously.

A crash between 3's rename and its commit re-delivers those messages to the next run, which
writes them again. Downstream (dbt staging, the checks) dedupes on (topic, partition, offset),
so the effect is exactly once. The consumer is assigned its partitions (no group rebalance), so
only one dump should run at a time: the lag sensor starts one only when none is in flight.
"""


import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from tqdm import tqdm

from pipeline_assets import settings
from pipeline_assets.raw import dead_letters, isolation, offsets, zone
from pipeline_assets.raw.chunk import Chunk, ChunkTables, chunk_tables
from pipeline_assets.raw.metadata import WriteSummary
from pipeline_assets.raw.worker import Worker
from pipeline_assets.resources import KafkaResource

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
POLL_TIMEOUT_S = 0.5
COMMIT_TIMEOUT_S = 120.0  # how long a commit is retried while the broker is away


class DumpStalled(RuntimeError):
    """No message arrived for `idle_timeout_s` although the partitions still lag."""


@dataclass(frozen=True)
class DumpOptions:
    topic: str
    group_id: str
    raw_dir: Path
    dead_letter_dir: Path
    batch_id: str
    max_messages: int
    chunk_size: int = 25_000
    commit_every: int = 500_000
    max_file_bytes: int = zone.DEFAULT_MAX_FILE_BYTES
    idle_timeout_s: float = 120.0
    isolate_failures: bool = False  # a message whose processing raises -> dead letter (isolation.py)


@dataclass
class DumpStats:
    summary: WriteSummary = field(default_factory=WriteSummary)
    messages: int = 0
    first_offset: dict[int, int] = field(default_factory=dict)  # per partition, this run
    last_offset: dict[int, int] = field(default_factory=dict)
    lag_after: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)  # offsets retention deleted before we read them
    commits: int = 0


def dump(consumer: Consumer, options: DumpOptions, log: Callable[[str], Any] = print) -> DumpStats:
    """Consume the group's new messages into the raw zone; see the module docstring."""
    return _Dump(consumer, options, log).run()


def _kafka_name(info: zone.PartInfo) -> str:
    return f"{info.group}-o{info.first_offset}-{info.last_offset}.parquet"


class _Dump:
    def __init__(self, consumer: Consumer, options: DumpOptions, log: Callable[[str], Any]) -> None:
        self.consumer = consumer
        self.o = options
        self.log = log
        self.stats = DumpStats()
        self.writer = zone.RawZoneWriter(options.raw_dir, _kafka_name, max_file_bytes=options.max_file_bytes)
        self.dead: dict[int, list[pa.Table]] = defaultdict(list)  # per partition, until the next checkpoint
        self.uncommitted: dict[int, int] = {}  # partition -> next offset, consumed but not committed
        self.since_checkpoint = 0
        self.paused: set[int] = set()

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> DumpStats:
        started = time.monotonic()
        for root in (self.o.raw_dir, self.o.dead_letter_dir):
            zone.remove_stale_temp_files(root)
        plan = offsets.partition_offsets(self.consumer, self.o.topic)
        self.end = {p.partition: p.high for p in plan}
        self.stats.skipped = {
            p.partition: p.low - p.committed for p in plan if p.committed is not None and p.committed < p.low
        }
        for partition, count in self.stats.skipped.items():
            self.log(f"partition {partition}: {count} offsets were deleted by retention before they were read")
        limit = min(self.o.max_messages, offsets.total_lag(plan))
        todo = [TopicPartition(self.o.topic, p.partition, p.start) for p in plan if p.lag > 0]
        self.log(f"{self.o.topic}: {offsets.total_lag(plan):,} messages waiting; this run takes {limit:,}")
        if limit > 0:
            self.consumer.assign(todo)
            try:
                self._consume(todo, limit)
            finally:
                self.writer.abort()  # no-op after a clean final checkpoint
        self.stats.summary.seconds = time.monotonic() - started
        after = offsets.partition_offsets(self.consumer, self.o.topic)
        self.stats.lag_after = {p.partition: p.lag for p in after}
        return self.stats

    def _consume(self, assigned: list[TopicPartition], limit: int) -> None:
        """Consume on this thread; parse, write and commit on the worker's (see worker.py)."""
        chunk = Chunk()
        consumed = 0
        idle_since = time.monotonic()
        positions = self._positions(assigned)
        bar = tqdm(total=limit, unit=" msg", unit_scale=True, desc=f"dump {self.o.topic}", disable=None)
        with bar, _young_objects_only_gc(), Worker(self._handle, depth=2) as worker:
            while consumed < limit and not self._caught_up(assigned, positions):
                want = min(FETCH_BATCH, limit - consumed, self.o.chunk_size - len(chunk))
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
                chunk.add(batch)
                consumed += len(batch)
                bar.update(len(batch))
                if len(chunk) >= self.o.chunk_size:
                    worker.put((chunk, False))
                    chunk = Chunk()
            worker.put((chunk, True))

    def _handle(self, item: tuple[Chunk, bool]) -> None:
        """Worker thread: process a chunk; checkpoint every `commit_every` messages and at the end."""
        chunk, last = item
        self._process(chunk)
        if last or self.since_checkpoint >= self.o.commit_every:
            self._checkpoint()

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

    # --- one chunk ---------------------------------------------------------------------------

    def _process(self, chunk: Chunk) -> None:
        if not len(chunk):
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        build = partial(chunk_tables, topic=self.o.topic, batch_id=self.o.batch_id, now=now)
        if self.o.isolate_failures:
            done = isolation.tables_isolating_failures(
                chunk, build, topic=self.o.topic, batch_id=self.o.batch_id, now=now, log=self.log
            )
        else:
            done = [build(chunk)]
        # Only now, with every table built, anything is written.
        for tables in done:
            self._write(tables)
        self.stats.messages += len(chunk)
        self.since_checkpoint += len(chunk)

    def _write(self, tables: ChunkTables) -> None:
        self.stats.summary.keep_preview(tables.rows)
        for partition, part in _by_partition(tables.rows):
            self.writer.write(part, f"{self.o.topic}-p{partition}")
        if tables.dead is not None:
            for partition, part in _by_partition(tables.dead):
                self.dead[partition].append(part)
            self.stats.summary.dead_letters.update(dead_letters.kinds(tables.dead))
        self._track_offsets(tables.kafka)

    def _track_offsets(self, kafka: pa.Table) -> None:
        partitions = kafka.column("kafka_partition").to_numpy()
        offsets_ = kafka.column("kafka_offset").to_numpy()
        for partition in np.unique(partitions):
            mine = offsets_[partitions == partition]
            p = int(partition)
            low, high = int(mine.min()), int(mine.max())
            self.stats.first_offset[p] = min(low, self.stats.first_offset.get(p, low))
            self.stats.last_offset[p] = max(high, self.stats.last_offset.get(p, high))
            self.uncommitted[p] = max(high + 1, self.uncommitted.get(p, 0))

    # --- durability, then commit --------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Make everything written durable, then commit the offsets it covers."""
        if not self.uncommitted:
            return
        self.stats.summary.add_files(self.writer.publish())
        for partition, parts in self.dead.items():
            table = _concat(parts)
            low, high = pc.min(table["kafka_offset"]).as_py(), pc.max(table["kafka_offset"]).as_py()
            name = f"{self.o.topic}-p{partition}-o{low}-{high}.parquet"
            self.stats.summary.bytes += dead_letters.write(table, self.o.dead_letter_dir, name)
        self.dead.clear()
        self._commit([TopicPartition(self.o.topic, p, o) for p, o in sorted(self.uncommitted.items())])
        self.uncommitted.clear()
        self.since_checkpoint = 0
        self.stats.commits += 1

    def _commit(self, positions: list[TopicPartition]) -> None:
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        while True:
            try:
                result = self.consumer.commit(offsets=positions, asynchronous=False)
                failed = [tp for tp in result or [] if tp.error is not None]
                if not failed:
                    return
                error = KafkaException(failed[0].error)
            except KafkaException as exc:
                error = exc
            kafka_error = error.args[0] if error.args and isinstance(error.args[0], KafkaError) else None
            if kafka_error is not None and not kafka_error.retriable() and kafka_error.fatal():
                raise error
            if time.monotonic() > deadline:
                raise error
            self.log(f"commit failed, retrying: {error}")
            time.sleep(1.0)


@contextmanager
def _young_objects_only_gc() -> Iterator[None]:
    """Keep Python's cyclic GC off the heap that existed before the loop, while the loop runs.

    consume() creates ~10k GC-tracked Message objects per call, so the collector ran every 700
    of them, and its full passes walked every object of the process (Dagster's imports included):
    30% of the consumer thread in the profile. Objects alive now are long-lived: freezing them
    leaves the collector only the loop's own objects, and a higher first threshold lets it run
    once per several batches, by when most messages are freed. Cycles are still collected.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _by_partition(table: pa.Table) -> list[tuple[int, pa.Table]]:
    return list(zone.split_rows(table, table.column("kafka_partition").to_numpy()))


def _concat(parts: list[pa.Table]) -> pa.Table:
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


# --- the Dagster asset ------------------------------------------------------------------------


class RawDumpConfig(dg.Config):
    """Run config of `raw_queries`; every field has a sensible default."""

    max_messages: int | None = None  # default: settings.raw_max_messages() (REDSET_RAW_MAX_MESSAGES)
    chunk_size: int = 25_000
    commit_every: int = 500_000
    max_file_mb: int = zone.DEFAULT_MAX_FILE_BYTES >> 20
    idle_timeout_s: float = 120.0
    # Set by the lag sensor after repeated failures: see isolation.py (smaller chunks and commits).
    isolate_failures: bool = False


@dg.asset(
    key="raw_queries",
    group_name="raw",
    deps=["redset_kafka_topic"],  # upstream.py
    kinds={"kafka", "parquet"},
    # One dump at a time where the instance limits pools (the lag sensor also waits for it).
    pool="raw_kafka",
    description="Every Kafka message of the topic, as typed Parquet rows in the raw zone (arrival_date=...), "
    "with dead letters for messages that cannot be parsed or typed.",
)
def raw_queries(context: dg.AssetExecutionContext, config: RawDumpConfig, kafka: KafkaResource) -> dg.MaterializeResult:
    options = DumpOptions(
        topic=settings.topic(),
        group_id=settings.consumer_group(),
        raw_dir=settings.raw_dir(),
        dead_letter_dir=settings.dead_letter_dir(),
        batch_id=context.run.run_id,
        max_messages=config.max_messages if config.max_messages is not None else settings.raw_max_messages(),
        chunk_size=config.chunk_size,
        commit_every=config.commit_every,
        max_file_bytes=config.max_file_mb << 20,
        idle_timeout_s=config.idle_timeout_s,
    )
    if config.isolate_failures:
        options = isolation.isolating(options)
    consumer = kafka.consumer(options.group_id, **CONSUMER_TUNING)
    try:
        stats = dump(consumer, options, log=context.log.info)
    except offsets.TopicMissing as exc:
        raise dg.Failure(description=f"{exc}; produce to it first (`redset produce`)") from exc
    except DumpStalled as exc:
        raise dg.Failure(description=str(exc)) from exc
    finally:
        consumer.close()
    return dg.MaterializeResult(metadata=dump_metadata(options, stats))


def dump_metadata(options: DumpOptions, stats: DumpStats) -> dict[str, Any]:
    consumed = {
        str(p): {"from": stats.first_offset[p], "to": stats.last_offset[p]} for p in sorted(stats.first_offset)
    }
    return {
        **stats.summary.metadata(),
        "messages_consumed": dg.MetadataValue.int(stats.messages),
        "offsets_consumed": dg.MetadataValue.json(consumed),
        "lag_after": dg.MetadataValue.int(sum(stats.lag_after.values())),
        "lag_after_by_partition": dg.MetadataValue.json({str(p): lag for p, lag in sorted(stats.lag_after.items())}),
        "offsets_deleted_before_read": dg.MetadataValue.json({str(p): n for p, n in stats.skipped.items()}),
        "commits": dg.MetadataValue.int(stats.commits),
        "isolate_failures": dg.MetadataValue.bool(options.isolate_failures),
        "batch_id": dg.MetadataValue.text(options.batch_id),
        "topic": dg.MetadataValue.text(options.topic),
        "consumer_group": dg.MetadataValue.text(options.group_id),
        "raw_dir": dg.MetadataValue.path(str(options.raw_dir)),
    }


dump_kafka_job = dg.define_asset_job(
    "dump_kafka_job",
    selection=[raw_queries],
    description="Consume every new message of the topic into the raw zone (started by kafka_lag_sensor).",
)
