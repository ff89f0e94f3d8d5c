"""Replay a Redset source into a Kafka topic, in arrival order, optionally at a time-scaled pace.

    redset produce --source data/synthetic.parquet --topic redset.queries --speed max
    redset produce --source <redset url> --speed 6480     # 3 months in about 20 minutes

Each row becomes one JSON message (see messages.py) keyed by `<deployment>:<instance_id>`, so the
rows of one instance stay in order within one partition. The producer is idempotent, so a retry
after a network hiccup never writes a row twice or out of order.

Memory stays bounded: the reader streams `batch_size` rows at a time and librdkafka's queue is
capped; when the queue is full, the loop waits for deliveries before sending more.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from tqdm import tqdm

from pipeline_assets.kafka import messages
from pipeline_assets.kafka.config import LIBRDKAFKA_LOG, client_config
from pipeline_assets.source import fetch, reader

# Producer defaults; any KAFKA_* variable overrides them (except idempotence, which we require).
PRODUCER_DEFAULTS: dict[str, object] = {
    "linger.ms": 20,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 200_000,
    "queue.buffering.max.kbytes": 256 * 1024,
    # Java clients' partitioner: every client maps a key to the same partition.
    "partitioner": "murmur2_random",
}
ADMIN_TIMEOUT_S = 15.0
# How long a pacing wait may last before the bar refreshes and deliveries are served.
MAX_SLEEP_S = 0.2


class ProduceError(RuntimeError):
    """Kafka cannot be reached or the topic cannot be created; the message says which and where."""


@dataclass(frozen=True)
class ProduceStats:
    rows: int
    bytes: int  # keys plus values, before compression
    seconds: float
    errors: int  # messages that were not delivered
    rows_per_s: float = field(init=False)
    first_error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows_per_s", self.rows / self.seconds if self.seconds > 0 else 0.0)

    def line(self, topic: str) -> str:
        text = (
            f"produced {self.rows:,} rows ({self.bytes / 1e6:,.1f} MB) to {topic} in {self.seconds:.1f}s: "
            f"{self.rows_per_s:,.0f} rows/s"
        )
        if self.errors:
            text += f"; {self.errors:,} NOT DELIVERED (first error: {self.first_error})"
        return text


def ensure_topic(topic: str, partitions: int = 3, bootstrap: str | None = None) -> bool:
    """Create `topic` with `partitions` partitions unless it exists. True when it was created."""
    conf = client_config() if bootstrap is None else client_config(**{"bootstrap.servers": bootstrap})
    admin = AdminClient(conf, logger=LIBRDKAFKA_LOG)
    where = conf["bootstrap.servers"]
    try:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        admin.poll(0)  # hands librdkafka's queued log lines (why it failed) to LIBRDKAFKA_LOG
        raise ProduceError(
            f"cannot reach Kafka at {where}: {exc.args[0].str()}. "
            "Start the local broker with `redset kafka start`, or set KAFKA_BOOTSTRAP_SERVERS."
        ) from exc
    existing = metadata.topics.get(topic)
    if existing is not None and existing.error is None:
        return False
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=-1)])[topic]
    try:
        future.result(timeout=ADMIN_TIMEOUT_S)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False  # another producer made it meanwhile
        raise ProduceError(f"cannot create topic {topic!r} on {where}: {exc.args[0].str()}") from exc
    return True


class _Deliveries:
    """Counts failed deliveries. librdkafka reports only failures (delivery.report.only.error)."""

    def __init__(self) -> None:
        self.failed = 0
        self.first: str | None = None
        self.fatal: KafkaError | None = None

    def on_delivery(self, err: KafkaError | None, msg: object) -> None:
        if err is not None:
            self.failed += 1
            self.first = self.first or err.str()

    def on_error(self, err: KafkaError) -> None:
        # Transient client errors (a broker restarting) are retried until message.timeout.ms;
        # a fatal one (the idempotent producer lost its guarantees) ends the run.
        if err.fatal():
            self.fatal = err
            self.first = self.first or err.str()


class _Clock:
    """When each row is due: its arrival's distance from the pacing origin, divided by `speed`.

    Rows in the first `full_speed_hours` of data are due at once; the wall clock is anchored to
    the first row after them, so the replay then keeps `speed`x real time.
    """

    def __init__(self, speed: float | None, full_speed_hours: float) -> None:
        self.speed = speed
        self.full_speed_us = full_speed_hours * 3600e6
        self.origin_us: float | None = None
        self.anchor: float | None = None  # monotonic time at which offset 0 is due

    def offsets(self, arrivals: pa.Array) -> np.ndarray | None:
        """Seconds after the anchor at which each row is due (negative: at once); None unpaced."""
        if self.speed is None:
            return None
        us = pc.cast(arrivals, pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        if self.origin_us is None:
            self.origin_us = float(us[0]) + self.full_speed_us
        # The reader sends rows in arrival order; the running max keeps a stray row from stalling.
        return np.maximum.accumulate((us - self.origin_us) / 1e6 / self.speed)

    def sendable(self, offsets: np.ndarray, start: int) -> tuple[int, float]:
        """(end, wait): rows[start:end] are due now; else wait `wait` seconds before asking again."""
        now = time.monotonic()
        if self.anchor is None:
            first_paced = int(np.searchsorted(offsets, 0.0, side="left"))
            if first_paced > start:
                return first_paced, 0.0
            self.anchor = now - offsets[start]
        end = int(np.searchsorted(offsets, now - self.anchor, side="right"))
        if end > start:
            return end, 0.0
        return start, min(MAX_SLEEP_S, self.anchor + offsets[start] - now)


def _source_rows(source: str | Path) -> int | None:
    """Rows in a local (or already downloaded) source, from parquet footers; None if unknown."""
    local = fetch.cache_path(str(source)) if fetch.is_url(source) else Path(source)
    try:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in reader.parquet_files(local))
    except (OSError, ValueError):
        return None


def produce(
    source: str | Path,
    topic: str,
    batch_size: int = 10_000,
    speed: float | None = None,
    limit: int | None = None,
    partitions: int = 3,
    full_speed_hours: float = 0.0,
    bootstrap: str | None = None,
    progress: bool = True,
) -> ProduceStats:
    """Send the rows of `source` to `topic` in arrival order; report what was and was not delivered.

    `speed` is the time-scale factor (6480: a day of data in 13 s); None sends as fast as possible.
    `bootstrap` overrides KAFKA_BOOTSTRAP_SERVERS. Raises ProduceError when Kafka cannot be reached.
    """
    say = print if progress else (lambda *a, **k: None)
    started = time.monotonic()
    # The source first: a missing file or missing columns fail here, before anything touches Kafka.
    batches = reader.iter_batches(source, batch_rows=batch_size, limit=limit)
    first = next(batches, None)  # reads (or downloads) the source, so the total is known after it
    if ensure_topic(topic, partitions, bootstrap):
        say(f"created topic {topic} with {partitions} partitions", file=sys.stderr)
    deliveries = _Deliveries()
    conf = PRODUCER_DEFAULTS | client_config()
    if bootstrap is not None:
        conf["bootstrap.servers"] = bootstrap
    conf |= {
        "enable.idempotence": True,
        "delivery.report.only.error": True,
        "on_delivery": deliveries.on_delivery,
        "error_cb": deliveries.on_error,
        "logger": LIBRDKAFKA_LOG,
    }
    producer = Producer(conf)
    clock = _Clock(speed, full_speed_hours)

    total = _source_rows(source)
    bar = tqdm(
        total=min(total, limit) if total is not None and limit is not None else (total or limit),
        unit=" rows", unit_scale=True, desc=f"produce {topic}", disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    with bar:
        rows, sent_bytes = _replay(producer, topic, _chain(first, batches), clock, deliveries, bar)
        remaining = _drain(producer, conf)
    seconds = time.monotonic() - started
    if deliveries.fatal is not None:
        say(f"stopped: fatal producer error: {deliveries.fatal.str()}", file=sys.stderr)
    first_error = deliveries.first or (f"{remaining:,} still queued after the final flush" if remaining else None)
    stats = ProduceStats(rows, sent_bytes, seconds, deliveries.failed + remaining, first_error)
    say(stats.line(topic), file=sys.stderr if stats.errors else sys.stdout)
    return stats


def _replay(
    producer: Producer,
    topic: str,
    batches: Iterator[pa.RecordBatch],
    clock: _Clock,
    deliveries: _Deliveries,
    bar: tqdm,
) -> tuple[int, int]:
    """Queue every row when it is due; (rows, bytes) queued. Stops early on a fatal error."""
    rows = sent_bytes = 0
    for batch in batches:
        keys, values = messages.encode(batch)
        sizes = np.cumsum(pc.add(pc.binary_length(keys).fill_null(0), pc.binary_length(values)).to_numpy())
        key_list, value_list = keys.to_pylist(), values.to_pylist()
        offsets = clock.offsets(batch.column("arrival_timestamp"))
        start = 0
        while start < len(value_list):
            if deliveries.fatal is not None:
                return rows, sent_bytes
            end, wait = (len(value_list), 0.0) if offsets is None else clock.sendable(offsets, start)
            if wait > 0:
                producer.poll(wait)  # sleeps, and serves delivery reports meanwhile
                continue
            send(producer, topic, key_list, value_list, start, end)
            bar.update(end - start)
            rows += end - start
            sent_bytes += int(sizes[end - 1] - (sizes[start - 1] if start else 0))
            start = end
    return rows, sent_bytes


def _drain(producer: Producer, conf: dict[str, object]) -> int:
    """Wait until every queued message is delivered or has failed; the number still queued.

    librdkafka fails a message after message.timeout.ms, so waiting a little longer than that
    means every message gets its verdict.
    """
    timeout_ms = conf.get("message.timeout.ms", conf.get("delivery.timeout.ms", 300_000))  # the two are aliases
    deadline = time.monotonic() + int(timeout_ms) / 1000 + 10
    while len(producer) and time.monotonic() < deadline:
        producer.flush(1.0)
    return len(producer)


def _chain(first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if first is not None:
        yield first
        yield from rest


def send(producer: Producer, topic: str, keys: list, values: list, start: int = 0, end: int | None = None) -> None:
    """Queue rows[start:end]; when librdkafka's queue is full, wait for deliveries and retry.

    The one way the project (and its tests) hands many messages to a producer: a bare
    `produce` raises BufferError ("Local: Queue full") once the queue is full."""
    for key, value in zip(keys[start:end], values[start:end], strict=True):
        produce_waiting(producer, topic, value, key)
    producer.poll(0)


def produce_waiting(producer: Producer, topic: str, value: bytes | str | None, key: str | None, **extra: Any) -> None:
    """producer.produce(topic, value, key, **extra); while librdkafka's queue is full, serve
    deliveries and try again."""
    while True:
        try:
            producer.produce(topic, value, key, **extra)
            return
        except BufferError:
            producer.poll(0.05)
