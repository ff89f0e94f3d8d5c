"""Durability, then commit: what the raw dump wrote becomes durable before its offsets are committed.

The dump's worker thread hands each chunk's tables to `Checkpoint.write`: rows stream into the
raw zone (zone.py, temporary files), dead letters stream to theirs (dead_letter_stream.py), and
the next offset of each partition is noted. `Checkpoint.save` publishes the raw files and the
dead letters (fsync, rename, fsync the folder; for zones on S3 also uploaded whole, staging.py),
writes a record of the files' arrival dates (raw/owed_dates.py: a run that dies after this commit
still owes their build), and only then
commits the offsets: an asynchronous commit, confirmed by reading the group's committed position
back, reissued until it is, within COMMIT_TIMEOUT_S; a synchronous commit has no deadline of its
own. A crash in between re-delivers those messages to the next run, and readers dedupe on
(partition, offset).
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_fixed

from pipeline_assets.raw import dead_letters, owed_dates, staging, zone, zone_rows
from pipeline_assets.raw.dump.chunk import ChunkTables
from pipeline_assets.raw.dump.dead_letter_stream import DeadLetterStream
from pipeline_assets.raw.dump.options import DumpOptions, DumpStats

COMMIT_TIMEOUT_S = 120.0  # how long a commit is retried while the broker is away
COMMIT_RETRY_WAIT_S = 1.0
COMMIT_CHECK_TIMEOUT_S = 10.0  # one read of the committed position


class CommitNotConfirmed(KafkaException):
    """The committed position read back is still below what was committed."""


class Checkpoint:
    """What the dump wrote since the last checkpoint: raw files, dead letters and offsets."""

    def __init__(self, consumer: Consumer, options: DumpOptions, stats: DumpStats, log: Callable[[str], Any]) -> None:
        self.consumer = consumer
        self.o = options
        self.stats = stats
        self.log = log
        self.raw_root = staging.writer_root(options.raw_dir, options.raw_url)
        self.dead_root = staging.writer_root(options.dead_letter_dir, options.dead_letter_url)
        self.writer = zone.RawZoneWriter(self.raw_root, _kafka_name, max_file_bytes=options.max_file_bytes)
        self.dead = DeadLetterStream(self.dead_root, lambda partition: kafka_group(options, partition))
        self.uncommitted: dict[int, int] = {}  # partition -> next offset, consumed but not committed
        self.since = 0  # messages since the last checkpoint

    def write(self, tables: ChunkTables) -> None:
        """Stream one chunk's rows and dead letters to their files; keep its offsets for `save`."""
        self.stats.summary.keep_preview(tables.rows)
        for partition, part in _by_partition(tables.rows):
            self.writer.write(part, kafka_group(self.o, partition))
        if tables.dead is not None:
            for partition, part in _by_partition(tables.dead):
                self.dead.write(partition, part)
            self.stats.summary.dead_letters.update(dead_letters.kinds(tables.dead))
        self._track_offsets(tables.kafka)
        self.since += tables.kafka.num_rows  # every message is in exactly one kafka table

    def due(self) -> bool:
        return self.since >= self.o.commit_every

    def save(self) -> None:
        """Make everything written durable, then commit the offsets it covers."""
        if not self.uncommitted:
            return
        written = self.writer.publish()
        self.stats.summary.add_files(written)
        self.stats.summary.bytes += self.dead.publish()
        staging.ship(self.raw_root, self.o.raw_url)  # zones on S3: every file uploaded whole first
        staging.ship(self.dead_root, self.o.dead_letter_url)
        owed_dates.record({f.arrival_date for f in written}, self.o.batch_id, self.o.owed_dir)
        positions = [TopicPartition(self.o.topic, p, o) for p, o in sorted(self.uncommitted.items())]
        commit(self.consumer, positions, self.log)
        self.uncommitted.clear()
        self.since = 0
        self.stats.commits += 1

    def abort(self) -> None:
        """Remove the files not yet published (none after a final `save`)."""
        self.writer.abort()
        self.dead.abort()

    def _track_offsets(self, kafka: pa.Table) -> None:
        partitions = kafka.column("kafka_partition").to_numpy()
        offsets = kafka.column("kafka_offset").to_numpy()
        for partition in np.unique(partitions):
            mine = offsets[partitions == partition]
            p = int(partition)
            low, high = int(mine.min()), int(mine.max())
            self.stats.first_offset[p] = min(low, self.stats.first_offset.get(p, low))
            self.stats.last_offset[p] = max(high, self.stats.last_offset.get(p, high))
            self.uncommitted[p] = max(high + 1, self.uncommitted.get(p, 0))


def commit(consumer: Consumer, positions: list[TopicPartition], log: Callable[[str], Any]) -> None:
    """Commit and confirm; a failure or an unconfirmed commit is retried every second for
    COMMIT_TIMEOUT_S (the broker may be restarting), unless librdkafka calls it fatal."""
    retrying = Retrying(
        retry=retry_if_exception(_worth_retrying),
        stop=stop_after_delay(COMMIT_TIMEOUT_S),
        wait=wait_fixed(COMMIT_RETRY_WAIT_S),
        before_sleep=lambda state: _log_retry(state, log),
        reraise=True,
    )
    retrying(_commit_once, consumer, positions)


def _commit_once(consumer: Consumer, positions: list[TopicPartition]) -> None:
    """An asynchronous commit (it returns at once), then the committed position read back with a
    timeout: the commit counts only once the group's position reached every offset."""
    consumer.commit(offsets=positions, asynchronous=True)
    read = consumer.committed(positions, timeout=COMMIT_CHECK_TIMEOUT_S)
    failed = [tp for tp in read or [] if tp.error is not None]
    if failed:
        raise KafkaException(failed[0].error)
    got = {tp.partition: tp.offset for tp in read or []}
    behind = [f"p{tp.partition}: {got.get(tp.partition)} < {tp.offset}" for tp in positions if got.get(tp.partition, -1) < tp.offset]
    if behind:
        raise CommitNotConfirmed(f"commit not confirmed yet ({', '.join(behind)})")


def _worth_retrying(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException):
        return False
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    return error is None or error.retriable() or not error.fatal()


def _log_retry(state: RetryCallState, log: Callable[[str], Any]) -> None:
    assert state.outcome is not None  # tenacity sleeps only after an attempt
    log(f"commit failed, retrying: {state.outcome.exception()}")


def kafka_group(options: DumpOptions, partition: int) -> str:
    """'<topic>-t<topic id>-p<partition>' (dbt reads the topic id back from the name); without an
    id, as before topic ids: '<topic>-p<partition>'."""
    topic_id = f"-t{options.topic_id}" if options.topic_id else ""
    return f"{options.topic}{topic_id}-p{partition}"


def _kafka_name(info: zone.PartInfo) -> str:
    return f"{info.group}-o{info.first_offset}-{info.last_offset}.parquet"


def _by_partition(table: pa.Table) -> list[tuple[int, pa.Table]]:
    return list(zone_rows.split_rows(table, table.column("kafka_partition").to_numpy()))
