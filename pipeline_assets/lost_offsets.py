"""Offsets lost upstream: deleted by Kafka's retention before the raw dump read them.

The dump finds them when a partition's committed offset is below its low watermark; it records
each such range once in `<raw dir>/_lost_upstream.jsonl` (appended and fsynced before it consumes
past it) and sends one `lost_upstream` alert then. raw_offsets_contiguous reads the record and
counts those offsets as lost upstream instead of missing, so the gap is reported once, not red
on every later check. Shared: raw/ writes it, warehouse/ reads it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from pipeline_assets.durable import fsync_path

FILE_NAME = "_lost_upstream.jsonl"


def read(raw_dir: Path, topic: str, topic_id: str | None = None) -> list[tuple[int, int, int]]:
    """The recorded (partition, first, end) ranges of `topic`, end exclusive, each once; with
    `topic_id`, of that generation only ('' for ranges recorded without one)."""
    path = Path(raw_dir) / FILE_NAME
    if not path.exists():
        return []
    ranges = set()
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            if entry["topic"] == topic and topic_id in (None, entry.get("topic_id") or ""):
                ranges.add((int(entry["partition"]), int(entry["first"]), int(entry["end"])))
    return sorted(ranges)


def record(raw_dir: Path, topic: str, partition: int, first: int, end: int, topic_id: str | None = None) -> bool:
    """Append one lost range (of the generation `topic_id`) unless it is recorded already; True when new."""
    if (partition, first, end) in read(raw_dir, topic, topic_id or ""):
        return False
    path = Path(raw_dir) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"topic": topic, "topic_id": topic_id or "", "partition": partition, "first": first, "end": end,
             "found_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
    with path.open("a") as out:
        out.write(json.dumps(entry) + "\n")
        out.flush()
        os.fsync(out.fileno())
    fsync_path(path)
    return True


def lost_within(ranges: list[tuple[int, int, int]], partition: int, first: int, last: int) -> int:
    """Recorded lost offsets of `partition` between `first` and `last` (inclusive)."""
    return sum(max(0, min(end, last + 1) - max(start, first)) for p, start, end in ranges if p == partition)
