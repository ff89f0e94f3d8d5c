"""Dead letters streamed to their files as the dump finds them, not held until the checkpoint.

One open Parquet file per Kafka partition, under a hidden temporary name (zone.temp_name, which
readers and `remove_stale_temp_files` know): each chunk's dead letters go in as a row group at
once, so a backlog of large bad messages costs one chunk of memory, not a commit interval's.
`publish` closes, fsyncs and renames each file to `<topic>-t<topic id>-p<partition>-o<first>-<last>.parquet`
(the offsets it holds) before the checkpoint commits; `abort` deletes what was not published.
"""

from __future__ import annotations

from collections.abc import Callable

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_assets.durable import fsync_dir, fsync_path
from pipeline_assets.raw.dead_letters import DEAD_LETTER_SCHEMA
from pipeline_assets.raw.zone import COMPRESSION, temp_name


@dataclass
class _Open:
    temp: Path
    writer: pq.ParquetWriter
    low: int
    high: int


class DeadLetterStream:
    def __init__(self, directory: Path, group_name: Callable[[int], str]) -> None:
        self.directory = Path(directory)
        self.group_name = group_name  # partition -> '<topic>-t<topic id>-p<partition>' (checkpoint.kafka_group)
        self._open: dict[int, _Open] = {}

    def write(self, partition: int, table: pa.Table) -> None:
        """Append one partition's dead letters (DEAD_LETTER_SCHEMA) to its open file."""
        low, high = pc.min(table["kafka_offset"]).as_py(), pc.max(table["kafka_offset"]).as_py()
        part = self._open.get(partition)
        if part is None:
            if not self.directory.exists():
                self.directory.mkdir(parents=True, exist_ok=True)
                fsync_dir(self.directory.parent)
            temp = self.directory / temp_name(f"{self.group_name(partition)}-{os.urandom(4).hex()}.parquet")
            part = self._open[partition] = _Open(temp, pq.ParquetWriter(temp, DEAD_LETTER_SCHEMA, compression=COMPRESSION), low, high)
        part.writer.write_table(table.cast(DEAD_LETTER_SCHEMA))
        part.low, part.high = min(part.low, low), max(part.high, high)

    def publish(self) -> int:
        """Make every open file durable under its final name; returns the bytes published."""
        written = 0
        for partition, part in sorted(self._open.items()):
            part.writer.close()
            fsync_path(part.temp)
            final = self.directory / f"{self.group_name(partition)}-o{part.low}-{part.high}.parquet"
            os.replace(part.temp, final)
            written += final.stat().st_size
        if self._open:
            fsync_dir(self.directory)
        self._open.clear()
        return written

    def abort(self) -> None:
        """Delete the files not yet published."""
        for part in self._open.values():
            part.writer.close()
            part.temp.unlink(missing_ok=True)
        self._open.clear()
