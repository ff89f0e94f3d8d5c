"""The raw dump with N consumer processes in one consumer group (REDSET_RAW_CONSUMERS=N).

Parsing and writing Parquet take about one core per consumer, so one process cannot use more.
This module plans the run once (committed offsets and watermarks, offsets.py), splits the
partitions that lag between at most N consumers (balanced by lag; a partition has one owner),
and starts one spawned process per consumer that has work. Each runs the usual dump
(dump/consume.py) on its own partitions, with the same group id, so the durability and commit
rules are those of one dump: its files are durable before it commits their offsets. Raw-zone file
names carry the partition, so two consumers never write the same name.

Partitions are assigned here, not by a group rebalance: the dump never subscribes (see
dump/asset.py), so a consumer that finishes early cannot pull partitions from one still running.

A consumer that fails (an exception, or a process that dies) does not stop the others: what each
one made durable is committed, and the failed one's uncommitted messages are read again by the
next run. The run then fails naming the consumer, its partitions and its error.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer

from pipeline_assets.kafka import offsets
from pipeline_assets.raw.dump import generation
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.raw.dump.options import DumpOptions, DumpStats

DEATH_GRACE_S = 2.0  # a dead process's last messages may still be in the queue


@dataclasses.dataclass
class ConsumerReport:
    """What one consumer process did (or how it failed)."""

    index: int
    partitions: tuple[int, ...]
    pid: int | None = None
    stats: DumpStats | None = None
    error: str | None = None

    def metadata(self) -> dict[str, Any]:
        done = self.stats or DumpStats()
        return {
            "consumer": self.index,
            "pid": self.pid,
            "partitions": list(self.partitions),
            "messages": done.messages,
            "rows_written": done.summary.rows,
            "seconds": round(done.summary.seconds, 3),
            **({"error": self.error} if self.error else {}),
        }


class ConsumerFailed(RuntimeError):
    """One or more consumer processes failed; the others' work is committed."""

    def __init__(self, message: str, stats: DumpStats) -> None:
        super().__init__(message)
        self.stats = stats


def split_partitions(plan: list[offsets.PartitionOffsets], consumers: int) -> list[tuple[int, ...]]:
    """Lagging partitions for each of `consumers`, largest lag first to the least loaded;
    an empty tuple for a consumer without work."""
    shares: list[list[int]] = [[] for _ in range(consumers)]
    load = [0] * consumers
    for p in sorted((p for p in plan if p.lag > 0), key=lambda p: (-p.lag, p.partition)):
        least = load.index(min(load))
        shares[least].append(p.partition)
        load[least] += p.lag
    return [tuple(sorted(s)) for s in shares]


def dump_in_parallel(
    consumer_config: dict[str, object],
    options: DumpOptions,
    consumers: int,
    log: Callable[[str], Any] = print,
    target: Callable[..., None] | None = None,
) -> tuple[DumpStats, list[ConsumerReport]]:
    """The dump by up to `consumers` processes; their stats summed and each one's report.
    Raises ConsumerFailed (with the summed stats) if any of them failed."""
    started = time.monotonic()
    planner = Consumer(consumer_config)
    try:
        plan = generation.checked_plan(
            planner, offsets.partition_offsets(planner, options.topic), topic=options.topic, topic_id=options.topic_id,
            raw_dir=options.raw_dir, new_generation=options.new_generation, log=log,
        )  # fmt: skip (once here: a topic reset stops the run before any consumer starts)
    finally:
        planner.close()
    if consumers > len(plan):
        log(
            f"REDSET_RAW_CONSUMERS={consumers} but {options.topic} has {len(plan)} partitions: "
            f"{consumers - len(plan)} consumer(s) idle (a partition has one consumer at most)"
        )
    lag = {p.partition: p.lag for p in plan}
    total = sum(lag.values())
    reports = [
        ConsumerReport(i, share) for i, share in enumerate(split_partitions(plan, min(consumers, len(plan)))) if share
    ]
    owners = "; ".join(f"consumer {r.index}: partitions {list(r.partitions)}" for r in reports)
    log(f"{options.topic}: {total:,} messages waiting; {owners or 'nothing to read'}")
    shares = _shares(options, reports, lag)
    _run_processes(consumer_config, shares, reports, log, target or consume_share)
    stats = _summed([r.stats for r in reports if r.stats is not None], plan)
    stats.summary.seconds = time.monotonic() - started
    failed = [r for r in reports if r.error is not None]
    if failed:
        named = "; ".join(
            f"raw dump consumer {r.index} (pid {r.pid}, partitions {list(r.partitions)}) failed: {r.error}"
            for r in failed
        )
        raise ConsumerFailed(
            f"{named}. What the consumers made durable is committed; the rest is read again by the next run.", stats
        )
    return stats, reports


def consume_share(index: int, consumer_config: dict[str, object], options: DumpOptions, results: Any) -> None:
    """A consumer process: the usual dump on `options.partitions`; reports on `results`."""
    from pipeline_assets.raw.dump.consume import dump  # imported in the child, after spawn

    results.put(("started", index, os.getpid()))
    consumer = Consumer(consumer_config)
    try:
        stats = dump(consumer, options, log=lambda text: results.put(("log", index, text)))
    except BaseException as exc:  # reported to the parent, which fails the run naming this consumer
        results.put(("log", index, "".join(traceback.format_exception(exc))))
        results.put(("error", index, f"{type(exc).__name__}: {exc}"))
        return
    finally:
        close_within(consumer)
    results.put(("done", index, stats))


def _shares(options: DumpOptions, reports: list[ConsumerReport], lag: dict[int, int]) -> dict[int, DumpOptions]:
    """Each consumer's options: its partitions, and its part of max_messages (by lag, summing
    to exactly the run's limit)."""
    owned = {r.index: sum(lag[p] for p in r.partitions) for r in reports}
    total = sum(owned.values())
    limit = min(options.max_messages, total)
    takes = {i: limit * n // total if total else 0 for i, n in owned.items()}
    for i in sorted(owned, key=lambda i: owned[i] - takes[i], reverse=True)[: limit - sum(takes.values())]:
        takes[i] += 1  # the rounding's remainder, one message each
    return {r.index: dataclasses.replace(options, partitions=r.partitions, max_messages=takes[r.index]) for r in reports}


def _run_processes(
    config: dict[str, object],
    shares: dict[int, DumpOptions],
    reports: list[ConsumerReport],
    log: Callable[[str], Any],
    target: Callable[..., None],
) -> None:
    """Start a spawned process per share; collect its pid, logs and stats (or error) until all ended."""
    context = multiprocessing.get_context("spawn")  # no forked librdkafka or Dagster threads
    results = context.Queue()
    by_index = {r.index: r for r in reports}
    processes = {
        i: context.Process(target=target, args=(i, config, share, results), name=f"raw-consumer-{i}", daemon=True)
        for i, share in shares.items()
    }
    for process in processes.values():
        process.start()
    dead_at: dict[int, float] = {}
    try:
        while any(by_index[i].stats is None and by_index[i].error is None for i in processes):
            try:
                kind, i, payload = results.get(timeout=0.5)
            except queue.Empty:
                _note_deaths(processes, by_index, dead_at)
                continue
            report = by_index[i]
            if kind == "started":
                report.pid = payload
            elif kind == "log":
                log(f"[consumer {i} pid {report.pid}] {payload}")
            elif kind == "done":
                report.stats = payload
            else:
                report.error = payload
    finally:
        for process in processes.values():
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


def _note_deaths(processes: dict[int, Any], reports: dict[int, ConsumerReport], dead_at: dict[int, float]) -> None:
    """A process that ended without a result (killed, out of memory) is an error once its
    last queued messages had time to arrive."""
    now = time.monotonic()
    for i, process in processes.items():
        report = reports[i]
        if process.exitcode is None or report.stats is not None or report.error is not None:
            continue
        if now - dead_at.setdefault(i, now) > DEATH_GRACE_S:
            report.pid = report.pid or process.pid
            report.error = f"the process ended with exit code {process.exitcode} before reporting"


def _summed(parts: list[DumpStats], plan: list[offsets.PartitionOffsets]) -> DumpStats:
    total = DumpStats()
    # Lag before the run, replaced by each consumer's lag after it (a failed one's stays).
    total.lag_after = {p.partition: p.lag for p in plan}
    for s in parts:
        total.summary.merge(s.summary)
        total.messages += s.messages
        total.first_offset.update(s.first_offset)  # partitions are disjoint between consumers
        total.last_offset.update(s.last_offset)
        total.lag_after.update(s.lag_after)
        total.skipped.update(s.skipped)
        total.commits += s.commits
    return total
