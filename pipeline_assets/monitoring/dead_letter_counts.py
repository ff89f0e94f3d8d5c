"""Dead letters by (topic, kind), counted from the dead-letter zone as files appear.

Dead-letter files are written once, atomically, and never rewritten, so each file is read once
(four small columns, never raw_value) and only new files are read on later scrapes. A re-delivery
after a crash may write the same (topic, partition, offset) into two files: it counts once, as
for readers of the zone. A file that went away (the zone was cleared) starts the count over.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_assets.raw.dead_letters import DEAD_LETTER_SCHEMA
from pipeline_assets.raw.message_rules import KINDS

# The `topic` label of dead letters from landing files, which have no Kafka topic.
LANDING = "(landing)"
OTHER = "other"  # a reason that starts with no known kind: keeps the label set bounded
_COLUMNS = ["kafka_topic", "kafka_partition", "kafka_offset", "reason"]


class DeadLetterCounts:
    """`counts()` on each scrape: {(topic, kind): dead letters} of the zone in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._reset()

    def _reset(self) -> None:
        self._files: set[str] = set()
        self._seen: set[tuple[str, int, int]] = set()
        self._counts: Counter[tuple[str, str]] = Counter()

    def counts(self) -> Counter[tuple[str, str]]:
        present = {f.name for f in self.directory.glob("*.parquet") if not f.name.startswith((".", "_"))}
        if not self._files <= present:
            self._reset()
        for name in sorted(present - self._files):
            self._add(self.directory / name)
            self._files.add(name)
        return Counter(self._counts)

    def _add(self, path: Path) -> None:
        table = pq.read_table(path, columns=_COLUMNS, schema=DEAD_LETTER_SCHEMA)
        kinds = pc.list_element(pc.split_pattern(table.column("reason"), ":", max_splits=1), 0).to_pylist()
        topics = table.column("kafka_topic").to_pylist()
        partitions = table.column("kafka_partition").to_pylist()
        offsets = table.column("kafka_offset").to_pylist()
        for topic, partition, offset, kind in zip(topics, partitions, offsets, kinds, strict=True):
            if topic is not None:
                key = (topic, partition, offset)
                if key in self._seen:
                    continue
                self._seen.add(key)
            self._counts[(topic or LANDING, kind if kind in KINDS else OTHER)] += 1
