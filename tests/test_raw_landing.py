"""The landing folder: landing_file_sensor + landing_queries with good and bad files."""

import errno
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from dagster._core.utils import make_new_run_id
from raw_support import dead_rows, raw_rows

from pipeline_assets import schema, settings
from pipeline_assets.kafka import messages
from pipeline_assets.orchestration.sensors import landing_file_sensor
from pipeline_assets.raw import zone
from pipeline_assets.raw.landing import folder as landing_folder
from pipeline_assets.raw.landing.asset import landing_queries
from pipeline_assets.raw.landing.folder import run_config
from pipeline_assets.raw.landing.ingest import ingest_file
from pipeline_assets.source import generator
from pipeline_assets.storage import filesystem


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    folder = settings.landing_dir()
    folder.mkdir(parents=True)
    return folder


def settled(path: Path) -> Path:
    """Backdate a file's mtime so the sensor no longer waits for it to be fully copied."""
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def sensor_tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    result = landing_file_sensor(context)
    return result, result.cursor if isinstance(result, dg.SensorResult) else context.cursor


def new_file_ticks(instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    """Two ticks: the first only notes a new or changed file, the second (it is unchanged) asks for it."""
    first, cursor = sensor_tick(instance, cursor)
    assert isinstance(first, dg.SkipReason), "a file seen for the first time is not requested yet"
    return sensor_tick(instance, cursor)


def ingest(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """The run the daemon makes of a request: tagged with its run key and the sensor's name."""
    tags = {"dagster/run_key": request.run_key, "dagster/sensor_name": "landing_file_sensor"}
    tags = tags if request.run_key else {}
    return dg.materialize(
        [landing_queries], run_config=request.run_config, instance=instance, tags=tags, raise_on_error=False
    )


def ingest_path(instance: dg.DagsterInstance, path: str | Path) -> dg.ExecuteInProcessResult:
    """A run launched by hand for one path."""
    return ingest(instance, dg.RunRequest(run_config=run_config(path)))


def rows_of(source_prefix: str) -> pa.Table:
    rows = raw_rows()
    return rows.filter(pc.starts_with(rows.column("source_file"), source_prefix))


def test_landing_files_are_ingested_once_and_bad_ones_rejected(landing: Path) -> None:
    # A good parquet file with a deployment column.
    good_parquet = generator.generate(3_000, seed=31)
    generator.write(good_parquet, landing / "march.parquet")
    # A good csv file in Redset's own columns: the deployment comes from its name. One row
    # has an empty query_type: a dead letter, not a reason to reject the file.
    serverless = generator.generate(2_000, seed=32, deployment="serverless")
    csv_rows = serverless.drop_columns(["deployment"])
    csv_rows = csv_rows.set_column(
        csv_rows.schema.get_field_index("query_type"),
        "query_type",
        pc.if_else(pa.array([i == 17 for i in range(2_000)]), None, csv_rows.column("query_type")),
    )
    pa_csv.write_csv(csv_rows, landing / "serverless-april.csv")
    # A good ndjson file, in the producer's JSON encoding.
    ndjson_rows = generator.generate(500, seed=33)
    _, values = messages.encode(ndjson_rows.combine_chunks().to_batches()[0])
    (landing / "may.ndjson").write_text("\n".join(values.to_pylist()) + "\n")
    # A parquet file without the query_id column, and a truncated parquet file.
    pq.write_table(good_parquet.drop_columns(["query_id"]), landing / "no-query-id.parquet")
    whole = (landing / "march.parquet").read_bytes()
    (landing / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    for f in landing.iterdir():
        settled(f)
    # A file still being written (hidden name) is left alone.
    (landing / ".incoming.parquet").write_bytes(b"partial")

    instance = dg.DagsterInstance.ephemeral()
    result, cursor = new_file_ticks(instance, None)
    assert isinstance(result, dg.SensorResult)
    requests = {Path(r.run_config["ops"]["landing_queries"]["config"]["path"]).name: r for r in result.run_requests}
    good = {"march.parquet", "serverless-april.csv", "may.ndjson"}
    assert set(requests) == good | {"no-query-id.parquet", "truncated.parquet"}
    for name, request in requests.items():
        st = (landing / name).stat()
        assert request.run_key == f"{name}:{st.st_size}:{st.st_mtime_ns}"
    assert set(json.loads(cursor)) == set(requests)
    # The cursor remembers name, size and mtime: the next tick asks for nothing new. Until the
    # daemon has made the runs (ingest() below), it asks for the same keys: the daemon drops repeats.
    again, _ = sensor_tick(instance, cursor)
    assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in requests.values())

    outcomes = {name: ingest(instance, request) for name, request in requests.items()}

    # Good files: every row once, with source_file and source_row, no Kafka metadata.
    assert outcomes["march.parquet"].success
    march = rows_of("march.parquet@")
    assert march.num_rows == 3_000
    assert march.column("source_row").to_pylist() == sorted(march.column("source_row").to_pylist())
    assert sorted(march.column("source_row").to_pylist()) == list(range(3_000))
    order = [("deployment", "ascending"), ("instance_id", "ascending"), ("query_id", "ascending")]
    expected = good_parquet.cast(schema.ARROW_SCHEMA).sort_by(order)
    assert march.select(schema.COLUMN_NAMES).sort_by(order).equals(expected)
    assert march.column("kafka_offset").null_count == 3_000 and march.column("kafka_topic").null_count == 3_000
    meta = outcomes["march.parquet"].asset_materializations_for_node("landing_queries")[0].metadata
    assert meta["rows_written"].value == 3_000
    days = pc.unique(pc.cast(good_parquet.column("arrival_timestamp"), pa.date32())).to_pylist()
    assert meta["arrival_dates"].value == sorted(d.isoformat() for d in days)

    assert outcomes["serverless-april.csv"].success
    april = rows_of("serverless-april.csv@")
    assert april.num_rows == 1_999
    assert set(april.column("deployment").to_pylist()) == {"serverless"}
    assert 17 not in april.column("source_row").to_pylist()
    [dead] = dead_rows().to_pylist()
    assert dead["field"] == "query_type" and "row 17" in dead["reason"] and dead["reason"].startswith("null_field")
    assert dead["source_file"].startswith("serverless-april.csv@") and dead["kafka_offset"] is None

    assert outcomes["may.ndjson"].success
    assert rows_of("may.ndjson@").num_rows == 500

    for name in good:
        assert (landing / "processed" / name).exists() and not (landing / name).exists()

    # Bad files: the run fails, the file moves to rejected/ with a note that says why.
    bad = {"no-query-id.parquet": "missing required columns: query_id", "truncated.parquet": "cannot be read"}
    for name, why in bad.items():
        assert not outcomes[name].success
        assert (landing / "rejected" / name).exists() and not (landing / name).exists()
        note = (landing / "rejected" / f"{name}.error.txt").read_text()
        assert name in note and why in note, note
        assert rows_of(f"{name}@").num_rows == 0

    # Exactly once: the same file dropped again lands on the same raw files, not beside them.
    before = raw_rows().num_rows
    shutil.copy(landing / "processed" / "march.parquet", landing / "march.parquet")
    settled(landing / "march.parquet")
    result, cursor = new_file_ticks(instance, cursor)
    [request] = result.run_requests
    assert ingest(instance, request).success
    assert raw_rows().num_rows == before
    assert rows_of("march.parquet@").num_rows == 3_000

    final, _ = sensor_tick(instance, cursor)
    assert isinstance(final, dg.SkipReason)


def test_without_a_path_every_waiting_file_is_ingested(landing: Path, zone_storage: str | None) -> None:
    files = {"a.parquet": generator.generate(100, seed=1), "b.parquet": generator.generate(200, seed=2)}
    for name, rows in files.items():
        generator.write(rows, landing / name)
    (landing / "bad.parquet").write_bytes(b"not parquet")
    if zone_storage:  # [s3]: the files are objects under the landing prefix, nothing on local disk
        fs, base = filesystem.filesystem(settings.zone_url("landing"))
        for path in sorted(landing.iterdir()):
            fs.put_file(str(path), f"{base}/{path.name}")
            path.unlink()
    result = dg.materialize([landing_queries], instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert raw_rows().num_rows == 300
    # Exactly once: the same file dropped again replaces its raw files; a second run finds nothing.
    if zone_storage:
        fs.pipe(f"{base}/a.parquet", fs.cat(f"{base}/processed/a.parquet"))
        landed = sorted(fs.ls(f"{base}/{landing_folder.PROCESSED}"))
    else:
        shutil.copy(landing / "processed" / "a.parquet", landing / "a.parquet")
    assert dg.materialize([landing_queries], instance=dg.DagsterInstance.ephemeral()).success
    assert raw_rows().num_rows == 300 and rows_of("a.parquet@").num_rows == 100
    if zone_storage:
        assert sorted(fs.ls(f"{base}/{landing_folder.PROCESSED}")) == landed
        assert [p.rsplit("/", 1)[-1] for p in fs.ls(base, detail=False)] == ["processed", "rejected"]
        rejected = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{base}/{landing_folder.REJECTED}"))
        assert [p.rsplit("/", 1)[-1] for p in landed] == ["a.parquet", "b.parquet"]
        assert not list(settings.data_dir().rglob("*.parquet"))  # every local copy and staged file gone
    else:
        assert sorted(p.name for p in (landing / "processed").iterdir()) == ["a.parquet", "b.parquet"]
        assert not [p for p in landing.iterdir() if p.is_file()]
        rejected = sorted(p.name for p in (landing / "rejected").iterdir())
    assert rejected == ["bad.parquet", "bad.parquet.error.txt"]


def test_the_sensor_requests_one_run_per_waiting_file_and_each_lands_once(
    landing: Path, zone_storage: str | None
) -> None:
    """[s3]: the sensor lists the objects at the top of the landing prefix (not .part, `_` or processed/
    ones), asks for a run per object by name, and the runs it asked for land each once."""
    files = {"a.parquet": generator.generate(100, seed=1), "b.parquet": generator.generate(200, seed=2)}
    for name, rows in files.items():
        settled(generator.write(rows, landing / name))
    (landing / "c.parquet.part").write_bytes(b"still being written")
    (landing / "_notes.txt").write_text("not a landing file")
    if zone_storage:
        fs, base = filesystem.filesystem(settings.zone_url("landing"))
        for path in sorted(landing.iterdir()):
            fs.put_file(str(path), f"{base}/{path.name}")
            path.unlink()
        fs.pipe_file(f"{base}/{landing_folder.PROCESSED}/old.parquet", b"ingested before")
    instance = dg.DagsterInstance.ephemeral()
    result, cursor = new_file_ticks(instance, None)
    assert isinstance(result, dg.SensorResult)
    configs = {r.run_key: r.run_config["ops"]["landing_queries"]["config"] for r in result.run_requests}
    assert sorted(key.split(":")[0] for key in configs) == ["a.parquet", "b.parquet"]
    for key, config in configs.items():
        name, size = key.split(":")[:2]
        assert Path(config["path"]).name == name  # on S3 the object's name, on disk the file's path
        assert int(size) == (fs.size(f"{base}/{name}") if zone_storage else (landing / name).stat().st_size)
    for request in result.run_requests:
        assert ingest(instance, request).success
    assert raw_rows().num_rows == 300 and rows_of("b.parquet@").num_rows == 200
    again, _ = sensor_tick(instance, cursor)
    assert isinstance(again, dg.SkipReason), "a landed file is not asked for again"


# --- nothing wedged: machine errors are retried, killed runs requested again -------------------


def step_attempts(result: dg.ExecuteInProcessResult) -> int:
    return 1 + sum(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("sha8", PermissionError(errno.EACCES, "Permission denied")),  # the first read of the file
        ("move", OSError(errno.ENOSPC, "No space left on device")),  # after the raw files are written
        ("sha8", pa.ArrowMemoryError("malloc of size 1073741824 failed")),
    ],
)
def test_a_machine_error_leaves_the_file_in_place_and_the_step_is_retried(
    landing: Path, monkeypatch: pytest.MonkeyPatch, where: str, error: OSError
) -> None:
    generator.write(generator.generate(400, seed=5), landing / "june.parquet")
    real = getattr(landing_folder, where)
    calls = 0

    def flaky(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(landing_folder, where, flaky)
    result = ingest_path(dg.DagsterInstance.ephemeral(), landing / "june.parquet")
    assert result.success
    assert step_attempts(result) == 2
    assert not (landing / "rejected").exists()
    assert (landing / "processed" / "june.parquet").exists() and not (landing / "june.parquet").exists()
    # The first attempt's raw files (the move case) are rewritten, not added to.
    assert rows_of("june.parquet@").num_rows == 400


def test_a_machine_error_that_does_not_pass_leaves_the_file_in_the_landing_folder(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = landing / "july.parquet"
    generator.write(generator.generate(100, seed=6), path)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zone.RawZoneWriter, "publish", full_disk)
    settings.raw_dir().mkdir(parents=True)
    with pytest.raises(OSError, match="No space left"):
        ingest_file(
            path,
            raw_dir=settings.raw_dir(),
            dead_letter_dir=settings.dead_letter_dir(),
            landing_dir=landing,
            batch_id="b",
        )
    assert path.exists() and not (landing / "rejected").exists() and not (landing / "processed").exists()


def test_a_bad_file_is_rejected_at_once_without_retries(landing: Path) -> None:
    (landing / "garbage.parquet").write_bytes(b"PAR1" + bytes(4096) + b"PAR1")  # corrupt: an OSError without errno
    result = ingest_path(dg.DagsterInstance.ephemeral(), landing / "garbage.parquet")
    assert not result.success and step_attempts(result) == 1
    assert (landing / "rejected" / "garbage.parquet").exists()
    assert "cannot be read" in (landing / "rejected" / "garbage.parquet.error.txt").read_text()


def record_run(instance: dg.DagsterInstance, run_key: str, status: dg.DagsterRunStatus) -> None:
    """A run as the daemon makes it for a request of the sensor, ended with `status`."""
    tags = {"dagster/run_key": run_key, "dagster/sensor_name": "landing_file_sensor"}
    run = dg.DagsterRun(job_name="ingest_landing_file_job", run_id=make_new_run_id(), tags=tags, status=status)
    instance.add_run(run)


def test_a_killed_or_failed_landing_run_is_requested_again(landing: Path) -> None:
    path = landing / "provisioned-aug.parquet"
    generator.write(generator.generate(50, seed=7), path)
    settled(path)
    key = f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
    with dg.instance_for_test() as instance:
        result, cursor = new_file_ticks(instance, None)
        assert [r.run_key for r in result.run_requests] == [key]
        record_run(instance, key, dg.DagsterRunStatus.STARTED)
        running, cursor = sensor_tick(instance, cursor)
        assert isinstance(running, dg.SkipReason)  # its run is still going

        # Killed (cancelled), then failed, then gone: requested again each time, a new key after a
        # run ended; the same key when its run is gone (the daemon drops a repeat that exists).
        instance.report_run_canceled(instance.get_runs()[0])
        result, cursor = sensor_tick(instance, cursor)
        assert [r.run_key for r in result.run_requests] == [f"{key}#retry-1"]
        assert result.run_requests[0].run_config == run_config(path)
        record_run(instance, f"{key}#retry-1", dg.DagsterRunStatus.FAILURE)
        result, cursor = sensor_tick(instance, cursor)
        assert [r.run_key for r in result.run_requests] == [f"{key}#retry-2"]
        result, cursor = sensor_tick(instance, cursor)  # no run was made for retry-2
        assert [r.run_key for r in result.run_requests] == [f"{key}#retry-2"]

        # Bounded: after the last retry fails, one alert and no more runs.
        record_run(instance, f"{key}#retry-2", dg.DagsterRunStatus.FAILURE)
        result, cursor = sensor_tick(instance, cursor)
        assert [r.run_key for r in result.run_requests] == [f"{key}#retry-3"]
        record_run(instance, f"{key}#retry-3", dg.DagsterRunStatus.FAILURE)
        for _ in range(2):
            result, cursor = sensor_tick(instance, cursor)
            assert isinstance(result, dg.SkipReason)
        [alert] = settings.alert_log_path().read_text().splitlines()
        assert "LANDING FILE ABANDONED" in alert and path.name in alert and "after 4 runs" in alert

        # A changed file starts over with its new key.
        os.utime(path, (time.time() - 30, time.time() - 30))
        result, cursor = new_file_ticks(instance, cursor)
        new_key = f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
        assert new_key != key and [r.run_key for r in result.run_requests] == [new_key]


# --- a launch touches only files in the landing folder -----------------------------------------


@pytest.mark.parametrize("where", ["outside", "symlink", "processed", "relative"])
def test_a_path_outside_the_landing_folder_fails_and_nothing_moves(landing: Path, where: str) -> None:
    outside = landing.parent / "elsewhere" / "precious.parquet"
    ingested_before = landing / "processed" / "old.parquet"
    for path in (outside, ingested_before):
        path.parent.mkdir()
        generator.write(generator.generate(10, seed=8), path)
    (landing / "link.parquet").symlink_to(outside)
    given = {
        "outside": str(outside),
        "symlink": str(landing / "link.parquet"),
        "processed": str(ingested_before),
        "relative": "../elsewhere/precious.parquet",
    }[where]
    before = {path: path.read_bytes() for path in (outside, ingested_before)}

    result = ingest_path(dg.DagsterInstance.ephemeral(), given)
    assert not result.success and step_attempts(result) == 1
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert given in message and f"not a file in the landing folder {landing}" in message, message
    assert {path: path.read_bytes() for path in before} == before
    assert (landing / "link.parquet").is_symlink()
    assert not (landing / "rejected").exists()
    assert [p.name for p in (landing / "processed").iterdir()] == ["old.parquet"]
    assert raw_rows().num_rows == 0


# --- timestamps with a zone offset become UTC, as on the Kafka path ----------------------------

ZONED = [  # (as written in the file, UTC)
    ("2024-03-01T10:00:00+02:00", datetime(2024, 3, 1, 8, 0)),
    ("2024-03-01T23:30:00-01:00", datetime(2024, 3, 2, 0, 30)),  # the next day in UTC
    ("2024-03-01T07:15:00.250Z", datetime(2024, 3, 1, 7, 15, 0, 250_000)),
    ("2024-03-01 12:00:00", datetime(2024, 3, 1, 12, 0)),  # no offset: UTC already
]


def zoned_rows() -> list[dict]:
    return [
        {"instance_id": 1, "query_id": i, "arrival_timestamp": text, "query_type": "select"}
        for i, (text, _) in enumerate(ZONED)
    ]


@pytest.mark.parametrize("kind", ["csv", "ndjson", "parquet-strings", "parquet-zoned"])
def test_timestamps_with_an_offset_become_utc(landing: Path, kind: str) -> None:
    name = f"provisioned-zoned.{kind.split('-')[0]}"
    rows = zoned_rows()
    if kind == "csv":
        pa_csv.write_csv(pa.Table.from_pylist(rows), landing / name)
        assert "+02:00" in (landing / name).read_text()
    elif kind == "ndjson":
        (landing / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "parquet-strings":
        pq.write_table(pa.Table.from_pylist(rows), landing / name)
    else:  # a tz-aware timestamp column, stored in UTC with its zone: 10:00+02:00 is 08:00 UTC
        utc = [when for _, when in ZONED]
        table = pa.Table.from_pylist(rows).drop_columns(["arrival_timestamp"])
        zoned = pa.array(utc, pa.timestamp("us", "UTC")).cast(pa.timestamp("us", "+02:00"))
        pq.write_table(table.append_column("arrival_timestamp", zoned), landing / name)
        assert pq.read_schema(landing / name).field("arrival_timestamp").type.tz == "+02:00"

    result = ingest_path(dg.DagsterInstance.ephemeral(), landing / name)
    assert result.success
    got = rows_of(f"{name}@").sort_by("query_id")
    assert got.column("arrival_timestamp").to_pylist() == [utc for _, utc in ZONED]
    meta = result.asset_materializations_for_node("landing_queries")[0].metadata
    assert meta["arrival_dates"].value == ["2024-03-01", "2024-03-02"]


# --- a file is taken only when whole ------------------------------------------------------------


def test_partial_file_written_slowly_lands_once_complete(landing: Path) -> None:
    """A writer appends to slow.ndjson for about 10 s, pausing longer than the old 2 s settle wait.
    The sensor ticks every 5 s and each request runs at once: the file must land once, whole."""
    import threading

    rows = generator.generate(400, seed=41)
    _, values = messages.encode(rows.combine_chunks().to_batches()[0])
    lines = [v + "\n" for v in values.to_pylist()]
    path = landing / "slow.ndjson"
    start = threading.Event()

    def writer() -> None:
        with path.open("a") as out:
            for burst in range(4):  # at 0, 3, 6 and 9 s
                out.writelines(lines[burst * 100 : (burst + 1) * 100])
                out.flush()
                start.set()
                if burst < 3:
                    time.sleep(3.0)

    instance = dg.DagsterInstance.ephemeral()
    thread = threading.Thread(target=writer)
    thread.start()
    start.wait()
    cursor, runs, t0 = None, [], time.monotonic()
    time.sleep(2.5)  # the first tick comes 2.5 s after a write, 0.5 s before the next
    while True:
        result, cursor = sensor_tick(instance, cursor)
        if isinstance(result, dg.SensorResult):
            runs += [ingest(instance, request) for request in result.run_requests]
        if (not thread.is_alive() and (landing / "processed" / path.name).exists()) or len(runs) > 1:
            break
        assert time.monotonic() - t0 < 60, "the file never landed"
        time.sleep(5.0)
    thread.join()
    assert len(runs) == 1 and runs[0].success
    assert rows_of("slow.ndjson@").num_rows == 400
    assert (landing / "processed" / path.name).read_text() == "".join(lines)
    assert not (landing / "rejected").exists()


def test_partial_file_part_suffix_and_done_markers_are_never_taken(landing: Path) -> None:
    generator.write(generator.generate(20, seed=42), landing / "next.parquet.part")
    generator.write(generator.generate(20, seed=43), landing / "ready.parquet")
    (landing / "ready.parquet.done").write_text("")
    for f in landing.iterdir():
        settled(f)
    assert [p.name for p in landing_folder.waiting_files(landing)] == ["ready.parquet"]
    instance = dg.DagsterInstance.ephemeral()
    result, _ = new_file_ticks(instance, None)
    [request] = result.run_requests
    assert ingest(instance, request).success
    assert sorted(p.name for p in landing.iterdir() if p.is_file()) == ["next.parquet.part"]  # the marker left too
    assert rows_of("ready.parquet@").num_rows == 20


def test_partial_file_changed_after_the_request_is_not_ingested_or_moved(landing: Path) -> None:
    path = landing / "growing.ndjson"
    rows = generator.generate(30, seed=44)
    _, values = messages.encode(rows.combine_chunks().to_batches()[0])
    path.write_text("\n".join(values.to_pylist()[:10]) + "\n")
    settled(path)
    instance = dg.DagsterInstance.ephemeral()
    result, cursor = new_file_ticks(instance, None)
    [request] = result.run_requests
    with path.open("a") as out:  # the writer was not done after all
        out.write("\n".join(values.to_pylist()[10:]) + "\n")
    outcome = ingest(instance, request)
    assert not outcome.success
    failure = outcome.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "growing.ndjson changed since the sensor saw it" in failure and "nothing was ingested or moved" in failure
    assert path.exists() and not (landing / "rejected").exists() and not (landing / "processed").exists()
    assert rows_of("growing.ndjson@").num_rows == 0
    settled(path)
    result, cursor = new_file_ticks(instance, cursor)  # once still, asked for again: the whole file
    [request] = result.run_requests
    assert ingest(instance, request).success and rows_of("growing.ndjson@").num_rows == 30
