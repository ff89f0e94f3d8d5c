"""Isolation mode of the raw dump: a message that crashes the dump goes to the dead letters, and the dump goes on.

Message validation lives in parse.py; this is for the bug nobody foresaw. When the lag sensor
has seen the same committed offsets fail REDSET_DUMP_MAX_ATTEMPTS times (dump/retries.py), it
requests the dump with `isolate_failures`. Such a run:

- processes a chunk as usual, but when building its tables raises, splits it in two and tries
  each half, down to single messages (about 2*log2(chunk) tries per bad message). A message
  that fails alone becomes a dead letter with reason `dump_failed: <Exception>: <text>` and an
  alert naming its topic, partition and offset; the others land as usual. Building the tables
  has no side effect (chunk.py), so a failed try leaves nothing behind;
- takes small chunks and commits after each one: if the process dies outright (a segfault, the
  OOM killer), what came before the fatal chunk is committed, and the next run starts at it;
- takes only the messages within one commit interval of the committed offsets, where the failure
  must be (the failed runs committed up to their last checkpoint); later runs are normal again.

Failures outside the tables (writing files, committing offsets, a dead process) are not caught:
the run fails, and the sensor retries it with a growing back-off.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pipeline_assets.alerts import send_alert
from pipeline_assets.raw.dump.chunk import Chunk, ChunkTables, dead_chunk_tables
from pipeline_assets.raw.dump.options import DumpOptions

CHUNK_SIZE = 2_000  # messages per chunk, and per commit, in isolation mode
REASON_MAX_CHARS = 2_000  # an exception's text can quote a whole message


def isolating(options: DumpOptions) -> DumpOptions:
    """The options of an isolation run, from those of a normal one."""
    chunk = min(options.chunk_size, CHUNK_SIZE)
    return dataclasses.replace(
        options,
        isolate_failures=True,
        chunk_size=chunk,
        commit_every=chunk,
        # A failed run committed up to its last checkpoint: its failing chunk lies within one
        # commit interval (plus the chunk itself) of where the group stands.
        max_messages=min(options.max_messages, options.commit_every + options.chunk_size),
    )


def tables_isolating_failures(
    chunk: Chunk,
    build: Callable[[Chunk], ChunkTables],
    *,
    topic: str,
    batch_id: str,
    now: datetime,
    log: Callable[[str], Any],
) -> list[ChunkTables]:
    """`build(chunk)`; where that raises, the tables of the parts that build, in order, and a
    dump_failed dead letter for each message that fails on its own."""
    results: list[ChunkTables] = []
    todo = [(0, len(chunk))]  # a stack of [start, stop) ranges; the first half is popped first
    while todo:
        start, stop = todo.pop()
        part = chunk.part(start, stop)
        try:
            results.append(build(part))
        except Exception as exc:  # any bug; KeyboardInterrupt and the like still stop the run
            if stop - start > 1:
                middle = (start + stop) // 2
                todo += [(middle, stop), (start, middle)]
                continue
            results.append(_dead_message(part, exc, topic=topic, batch_id=batch_id, now=now, log=log))
    return results


def _dead_message(
    message: Chunk, exc: Exception, *, topic: str, batch_id: str, now: datetime, log: Callable[[str], Any]
) -> ChunkTables:
    error = f"{type(exc).__name__}: {exc}"[:REASON_MAX_CHARS]
    partition, offset = message.partitions[0], message.offsets[0]
    log(
        f"processing {topic} partition {partition} offset {offset} failed; it goes to the dead letters:\n"
        + "".join(traceback.format_exception(exc))
    )
    send_alert(
        "dump_failed",
        f"processing this message raised {error}; it went to the dead letters (reason dump_failed), "
        "the rest of the topic is dumped",
        topic=topic,
        partition=partition,
        offset=offset,
        run_id=batch_id,
    )
    return dead_chunk_tables(message, f"dump_failed: {error}", topic, batch_id, now)
