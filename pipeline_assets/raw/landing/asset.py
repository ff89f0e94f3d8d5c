"""The `landing_queries` asset: Redset files dropped into the landing folder, into the raw zone.

landing_file_sensor (sensors.py) requests one ingest_landing_file_job run per new file, with its
path in the run config; a run without a path ingests every file waiting. The work is split by job:

    landing/folder.py   the folder: waiting files, which paths belong to it, moves
    landing/read.py     one file read and typed (the same conform() as the Kafka producer's reader)
    landing/ingest.py   one file into the raw zone and the dead letters, then processed/ or rejected/
    landing/remote.py   a landing prefix on S3: objects fetched, ingested as local copies, moved last

What makes a whole file bad (it is rejected, nothing is written): it cannot be read (truncated
or not really parquet/csv/JSON), it lacks a required column, a column holds values of the
wrong type, the deployment is unknown (no column, and neither 'provisioned' nor 'serverless'
in its name), or not one row is valid. A row with a null or blank required field goes to the
dead letters, like a bad Kafka message.

An error of the machine (a full disk, a permission) never rejects a file: it stays in the landing
folder, the step is retried (RETRY_POLICY), and when the retries run out the run fails (an alert
from alert_on_run_failure) and the sensor requests it again a bounded number of times.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.raw import staging, zone
from pipeline_assets.raw.landing import remote
from pipeline_assets.raw.landing.folder import PROCESSED, REJECTED, OutsideLanding, landing_file, waiting_files
from pipeline_assets.raw.landing.ingest import FileChanged, Ingested, ingest_file
from pipeline_assets.raw.landing.read import FileRejected
from pipeline_assets.raw.metadata import WriteSummary
from pipeline_assets.storage import filesystem, location
from pipeline_assets.storage.location import is_remote

# Waits of 2, 6 and 14 s (Backoff.EXPONENTIAL: (2^n - 1) * delay) for a transient error to pass.
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)


class LandingConfig(dg.Config):
    """Run config of `landing_queries` (the landing sensor sets `path`)."""

    # One file directly in the landing folder (a relative path is taken there); empty: every
    # file waiting in the landing folder.
    path: str = ""
    # The file's size and mtime as the sensor saw them (-1: not checked): a file that changed
    # since is still being written, and is left for a later request.
    size: int = -1
    mtime_ns: int = -1
    max_file_mb: int = zone.DEFAULT_MAX_FILE_BYTES >> 20


def files_to_ingest(config: LandingConfig, landing_dir: Path) -> list[Path]:
    """The files this run may touch, each checked to lie directly in the landing folder."""
    try:
        if config.path:
            return [landing_file(config.path, landing_dir)]
        return [landing_file(path, landing_dir) for path in waiting_files(landing_dir)]
    except OutsideLanding as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


@dg.asset(
    key="landing_queries",
    group_name="raw",
    kinds={"parquet", "csv"},
    retry_policy=RETRY_POLICY,
    description="Redset files dropped into the landing folder (parquet, csv, ndjson), in the raw zone "
    "with source_file set; processed files move to landing/processed/, bad ones to landing/rejected/.",
)
def landing_queries(context: dg.AssetExecutionContext, config: LandingConfig) -> dg.MaterializeResult:
    place = _Place.resolve()
    zone.remove_stale_temp_files(place.raw_dir)
    summary = WriteSummary()
    ingested: list[Ingested] = []
    rejected: dict[str, str] = {}
    for path in place.files(config, context.log.info):
        if not path.exists():
            done = place.landing_dir / PROCESSED / path.name
            if done.exists():
                context.log.info(f"{path.name} was already ingested ({done}); nothing to do")
                continue
            raise dg.Failure(
                description=f"{path}: no such file in the landing folder or in {PROCESSED}/", allow_retries=False
            )
        expected = (config.size, config.mtime_ns) if config.path and config.size >= 0 and not place.url else None
        try:
            result = ingest_file(
                path,
                raw_dir=place.raw_dir,
                dead_letter_dir=place.dead_dir,
                landing_dir=place.landing_dir,
                batch_id=context.run.run_id,
                max_file_bytes=config.max_file_mb << 20,
                expected_state=expected,
            )
        except FileChanged as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        except FileRejected as exc:
            context.log.error(f"rejected {path.name}: {exc}")
            rejected[path.name] = str(exc)
            continue
        finally:
            place.finish(path)
        context.log.info(
            f"{path.name}: {result.summary.rows:,} rows, {sum(result.summary.dead_letters.values()):,} dead letters "
            f"-> {result.moved_to}"
        )
        ingested.append(result)
        summary.merge(result.summary)

    metadata = {
        **summary.metadata(),
        "files_ingested": dg.MetadataValue.json([r.source_file for r in ingested]),
        "rows_in_files": dg.MetadataValue.int(sum(r.rows_in_file for r in ingested)),
        "rejected_files": dg.MetadataValue.json(rejected),
        "batch_id": dg.MetadataValue.text(context.run.run_id),
    }
    if rejected and not ingested:
        raise dg.Failure(
            description="rejected: " + "; ".join(rejected.values()) + f" (see {place.shown}/{REJECTED})",
            metadata=metadata,
            allow_retries=False,  # bad content: a retry would read the same bytes
        )
    return dg.MaterializeResult(metadata=metadata)


@dataclass(frozen=True)
class _Place:
    """Where a run reads and writes: the zones' folders, or for zones on S3 local staging folders
    and the landing prefix's URL (remote.py)."""

    landing_dir: Path
    raw_dir: Path
    dead_dir: Path
    url: str | None = None  # the landing prefix on S3
    zones: tuple[tuple[Path, str | None], ...] = ()  # (staging folder, zone URL) for each zone on S3

    @staticmethod
    def resolve() -> "_Place":
        url = settings.zone_url("landing")
        if not is_remote(url):
            return _Place(settings.landing_dir(), *_writer_roots())
        filesystem.check(url)
        local = staging.process_folder(location.writer_dir("landing", settings.data_dir()))
        roots = _writer_roots()
        zones = tuple(zip(roots, (settings.zone_url("raw"), settings.zone_url("dead_letters")), strict=True))
        return _Place(local, *roots, url=url, zones=zones)

    @property
    def shown(self) -> str:
        return self.url or str(self.landing_dir)

    def files(self, config: LandingConfig, log: Callable[[str], object]) -> list[Path]:
        """The files this run may touch; on S3, local copies of the objects."""
        if not self.url:
            return files_to_ingest(config, self.landing_dir)
        names = [config.path] if config.path else remote.waiting_objects(self.url)
        copies = []
        for name in names:
            if config.path and remote.processed_already(self.url, name):
                log(f"{name} was already ingested ({self.url}/{PROCESSED}/{name}); nothing to do")
                continue
            try:
                copies.append(remote.fetch(self.url, name, self.landing_dir))
            except remote.NoSuchObject as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
        return copies

    def finish(self, path: Path) -> None:
        if self.url:
            remote.finish(self.url, path.name, self.landing_dir, list(self.zones))


def _writer_roots() -> tuple[Path, Path]:
    """The raw zone's and the dead letters' writer folders (staging ones for zones on S3)."""
    data = settings.data_dir()
    return (
        staging.writer_root(location.writer_dir("raw", data), settings.zone_url("raw")),
        staging.writer_root(location.writer_dir("dead_letters", data), settings.zone_url("dead_letters")),
    )


ingest_landing_file_job = dg.define_asset_job(
    "ingest_landing_file_job",
    selection=[landing_queries],
    description="Ingest one landing file (path in run config) into the raw zone (started by landing_file_sensor).",
    tags={"dagster/max_runtime": str(2 * 3600)},  # a generous bound, for run monitoring
)
