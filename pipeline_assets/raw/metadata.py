"""Materialization metadata shared by the raw-zone assets (Kafka dump and landing ingest)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import html
import re

import dagster as dg
import pyarrow as pa

from pipeline_assets.raw.zone import WrittenFile

PREVIEW_COLUMNS = (
    "deployment",
    "instance_id",
    "query_id",
    "arrival_timestamp",
    "query_type",
    "execution_duration_ms",
    "kafka_partition",
    "kafka_offset",
    "source_file",
    "source_row",
)
PREVIEW_ROWS = 5
# Markdown's punctuation that means something inside a table cell; <, > and & are HTML-escaped.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~])")


@dataclass
class WriteSummary:
    """What one run put into the raw zone and the dead letters."""

    rows: int = 0
    dead_letters: Counter = field(default_factory=Counter)  # kind -> count
    arrival_dates: set[date] = field(default_factory=set)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    preview: pa.Table | None = None
    paths: list[Path] = field(default_factory=list)  # the files written (live mode's latency metric)

    def add_files(self, written: Iterable[WrittenFile]) -> None:
        for f in written:
            self.rows += f.rows
            self.files += 1
            self.bytes += f.bytes
            self.arrival_dates.add(f.arrival_date)
            self.paths.append(f.path)

    def merge(self, other: WriteSummary) -> None:
        self.rows += other.rows
        self.dead_letters.update(other.dead_letters)
        self.arrival_dates |= other.arrival_dates
        self.files += other.files
        self.bytes += other.bytes
        self.seconds += other.seconds
        self.paths += other.paths
        if other.preview is not None:
            self.keep_preview(other.preview)

    def keep_preview(self, table: pa.Table) -> None:
        if self.preview is None and table.num_rows:
            self.preview = table.slice(0, PREVIEW_ROWS)

    def metadata(self) -> dict[str, Any]:
        dead = sum(self.dead_letters.values())
        return {
            "rows_written": dg.MetadataValue.int(self.rows),
            "dead_letters": dg.MetadataValue.int(dead),
            "dead_letters_by_kind": dg.MetadataValue.json(dict(sorted(self.dead_letters.items()))),
            # The dbt sensors read this list to materialise just the daily partitions touched.
            "arrival_dates": dg.MetadataValue.json(sorted(d.isoformat() for d in self.arrival_dates)),
            "files_written": dg.MetadataValue.int(self.files),
            "bytes_written": dg.MetadataValue.int(self.bytes),
            "seconds": dg.MetadataValue.float(round(self.seconds, 3)),
            "rows_per_second": dg.MetadataValue.float(round(self.rows / self.seconds, 1) if self.seconds else 0.0),
            "preview": dg.MetadataValue.md(preview_markdown(self.preview)),
        }


def preview_markdown(table: pa.Table | None) -> str:
    """A few rows as a Markdown table (no extra dependency)."""
    if table is None or table.num_rows == 0:
        return "(no rows)"
    columns = [c for c in PREVIEW_COLUMNS if c in table.column_names]
    rows = table.select(columns).to_pylist()
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if r[c] is None else markdown_text(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown_text(value: object) -> str:
    """`value` as literal text in Dagster's Markdown: one line, never a link, an image, HTML or a cell."""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))
