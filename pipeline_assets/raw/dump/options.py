"""What one raw dump run is asked to do (DumpOptions) and what it did (DumpStats)."""

from dataclasses import dataclass, field
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.raw import zone
from pipeline_assets.raw.metadata import WriteSummary
from pipeline_assets.storage import filesystem, location


@dataclass(frozen=True)
class DumpOptions:
    topic: str
    group_id: str
    raw_dir: Path
    dead_letter_dir: Path
    batch_id: str
    max_messages: int
    chunk_size: int = 25_000
    chunk_bytes: int = field(default_factory=lambda: settings.bound("raw_chunk_bytes"))  # whichever comes first
    commit_every: int = 500_000
    max_file_bytes: int = zone.DEFAULT_MAX_FILE_BYTES
    idle_timeout_s: float = 120.0
    isolate_failures: bool = False  # a message whose processing raises -> dead letter (isolation.py)
    partitions: tuple[int, ...] | None = None  # only these (one of parallel consumers); None: all
    topic_id: str | None = None  # Kafka's id of the topic (kafka/topic_ids.py); in the file names
    new_generation: bool = False  # accept a re-created topic (generation.py) instead of stopping
    owed_dir: Path | None = None  # the owed-dates records (raw/owed_dates.py); None: the default folder
    # For zones on s3://, their URLs: files are staged under raw_dir/dead_letter_dir and uploaded (raw/staging.py).
    raw_url: str | None = None
    dead_letter_url: str | None = None


@dataclass
class DumpStats:
    summary: WriteSummary = field(default_factory=WriteSummary)
    messages: int = 0
    first_offset: dict[int, int] = field(default_factory=dict)  # per partition, this run
    last_offset: dict[int, int] = field(default_factory=dict)
    lag_after: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)  # offsets retention deleted before we read them
    commits: int = 0


def zone_folders() -> dict[str, Path | str]:
    """DumpOptions' raw_dir, dead_letter_dir, raw_url and dead_letter_url, once the zones' storage
    answers: a dump's first step, before anything is consumed from Kafka. A wrong endpoint, a missing
    bucket or bad credentials raise StorageError, one line naming the URL."""
    folders: dict[str, Path | str] = {}
    for zone_name, field_name in (("raw", "raw"), ("dead_letters", "dead_letter")):
        url = settings.zone_url(zone_name)
        filesystem.check(url)
        folders[f"{field_name}_dir"] = location.writer_dir(zone_name, settings.data_dir())
        folders[f"{field_name}_url"] = url
    return folders
