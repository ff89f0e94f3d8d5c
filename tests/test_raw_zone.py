"""zone.py: the raw zone writer (atomic, Hive-partitioned, size-bounded, deterministic names)."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_assets import schema
from pipeline_assets.raw import zone, zone_read, zone_rows
from pipeline_assets.source import generator


def kafka_rows(rows: int, partition: int = 0, first_offset: int = 0) -> pa.Table:
    typed = generator.generate(rows, seed=3, days=4)
    return zone_rows.to_raw_table(
        typed,
        {
            "kafka_topic": pa.array(["t"] * rows),
            "kafka_partition": pa.array([partition] * rows, pa.int32()),
            "kafka_offset": pa.array(range(first_offset, first_offset + rows), pa.int64()),
            "batch_id": pa.array(["b1"] * rows),
            "ingested_at": pa.array([0] * rows, pa.int64()).cast(schema.TIMESTAMP),
        },
    )


def kafka_name(info: zone.PartInfo) -> str:
    return f"{info.group}-o{info.first_offset}-{info.last_offset}.parquet"


def published(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_rows_land_by_arrival_date_and_nothing_is_visible_before_publish(tmp_path: Path) -> None:
    table = kafka_rows(20_000)
    writer = zone.RawZoneWriter(tmp_path, kafka_name, row_group_rows=1_000)
    writer.write(table, "t-p0")
    # Only hidden temporary files so far: a reader globbing *.parquet sees nothing.
    assert list(tmp_path.rglob("*.parquet")) == []
    assert zone_read.read_raw_zone(tmp_path).num_rows == 0
    files = writer.publish()

    assert not list(tmp_path.rglob(f"*{zone.TEMP_SUFFIX}"))
    assert sum(f.rows for f in files) == 20_000
    back = zone_read.read_raw_zone(tmp_path)
    assert back.num_rows == 20_000
    assert back.schema.equals(schema.RAW_SCHEMA)
    for f in files:
        part = pq.read_table(f.path)
        days = pc.unique(pc.cast(part.column("arrival_timestamp"), pa.date32())).to_pylist()
        assert days == [f.arrival_date]
        assert f.path.parent.name == f"arrival_date={f.arrival_date.isoformat()}"
        offsets = part.column("kafka_offset")
        assert f.path.name == f"t-p0-o{pc.min(offsets).as_py()}-{pc.max(offsets).as_py()}.parquet"
    assert len({f.arrival_date for f in files}) == 4


def test_files_rotate_at_the_size_bound_and_names_are_deterministic(tmp_path: Path) -> None:
    table = kafka_rows(40_000)

    def write(root: Path) -> list[zone.WrittenFile]:
        writer = zone.RawZoneWriter(root, kafka_name, max_file_bytes=100_000, row_group_rows=2_000)
        for start in range(0, table.num_rows, 5_000):
            writer.write(table.slice(start, 5_000), "t-p0")
        return writer.publish()

    first = write(tmp_path / "a")
    again = write(tmp_path / "b")
    assert len(first) > 8  # 4 days, several parts each
    assert all(f.bytes < 100_000 + 150_000 for f in first)  # bound + at most one row group over
    assert [f.path.relative_to(tmp_path / "a") for f in first] == [f.path.relative_to(tmp_path / "b") for f in again]
    assert zone_read.read_raw_zone(tmp_path / "a").num_rows == 40_000

    # Writing the same rows again replaces the files instead of adding copies.
    write(tmp_path / "a")
    assert zone_read.read_raw_zone(tmp_path / "a").num_rows == 40_000


def test_abort_leaves_nothing_behind(tmp_path: Path) -> None:
    writer = zone.RawZoneWriter(tmp_path, kafka_name)
    writer.write(kafka_rows(1_000), "t-p0")
    writer.abort()
    assert [p for p in published(tmp_path) if p.is_file()] == []
    assert writer.publish() == []


def test_too_many_open_days_close_the_oldest_first(tmp_path: Path) -> None:
    writer = zone.RawZoneWriter(tmp_path, kafka_name, max_open_parts=2)
    writer.write(kafka_rows(8_000), "t-p0")  # 4 days: two must be closed early
    assert len(writer._open) == 2
    files = writer.publish()
    assert sum(f.rows for f in files) == 8_000


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "arrival_date=2024-03-01" / f".{dead.stdout.strip()}-t-p0-0.parquet{zone.TEMP_SUFFIX}"
    mine = tmp_path / "arrival_date=2024-03-01" / f".{os.getpid()}-t-p0-1.parquet{zone.TEMP_SUFFIX}"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    mine.write_bytes(b"being written")
    assert zone.remove_stale_temp_files(tmp_path) == 1
    assert not stale.exists() and mine.exists()


def test_landing_rows_keep_null_kafka_columns(tmp_path: Path) -> None:
    typed = generator.generate(500, seed=9, days=1)
    rows = zone_rows.to_raw_table(
        typed,
        {
            "source_file": pa.array(["f.csv@12345678"] * 500),
            "source_row": pa.array(range(500), pa.int64()),
            "batch_id": pa.array(["b"] * 500),
            "ingested_at": pa.array([0] * 500, pa.int64()).cast(schema.TIMESTAMP),
        },
    )
    writer = zone.RawZoneWriter(tmp_path, lambda info: f"{info.group}.parquet")
    writer.write(rows, "landing-f-12345678")
    [f] = writer.publish()
    back = pq.read_table(f.path)
    assert back.column("kafka_offset").null_count == 500
    assert back.column("source_row").to_pylist() == list(range(500))


def test_preview_markdown_escapes_message_and_file_name_text() -> None:
    """A hostile deployment or file name stays text in Dagster's Markdown: no link, image, HTML or extra cell."""
    from markdown_it import MarkdownIt

    from pipeline_assets.raw.metadata import PREVIEW_COLUMNS, preview_markdown

    hostile = {
        "deployment": "x | y\n| forged | row |",
        "query_type": "<img src=x onerror=alert(1)>",
        "source_file": "[click](javascript:alert(1))![i](http://e/x.png)@ab12cd34",
    }
    table = pa.table({c: [hostile.get(c, "v")] for c in PREVIEW_COLUMNS})
    tokens = MarkdownIt("commonmark").enable("table").parse(preview_markdown(table))
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert not kinds & {"link_open", "image", "html_inline", "html_block"}
    assert sum(t.type == "tr_open" for t in tokens) == 2  # the header and the one row
    cells = [t.children[0].content if t.children else "" for t in tokens if t.type == "inline"]
    assert cells[len(PREVIEW_COLUMNS) :][:1] == ["x | y | forged | row |"]
    assert hostile["query_type"] in cells and hostile["source_file"] in cells
