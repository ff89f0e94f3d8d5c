"""checks.py: the offset-continuity and tie-out checks see gaps, overlaps and re-deliveries."""

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline_assets import schema, settings
from pipeline_assets.raw import dead_letters, zone, zone_rows
from pipeline_assets.source import generator
from pipeline_assets.warehouse import checks


def write_kafka_rows(offsets: list[int], partition: int = 0, batch: str = "b1", topic_id: str = "") -> None:
    n = len(offsets)
    rows = zone_rows.to_raw_table(
        generator.generate(n, seed=7, days=1),
        {
            "kafka_topic": pa.repeat(pa.scalar("t"), n),
            "kafka_partition": pa.array([partition] * n, pa.int32()),
            "kafka_offset": pa.array(offsets, pa.int64()),
            "batch_id": pa.repeat(pa.scalar(batch), n),
            "ingested_at": pa.repeat(pa.scalar(datetime(2024, 6, 1), schema.TIMESTAMP), n),
        },
    )
    writer = zone.RawZoneWriter(settings.raw_dir(), lambda i: f"{i.group}-o{i.first_offset}-{i.last_offset}.parquet")
    writer.write(rows, f"t{topic_id and '-t' + topic_id}-p{partition}")
    writer.publish()


def write_dead_letter(offset: int, partition: int = 0, batch: str = "b1", topic_id: str = "") -> None:
    kafka = pa.table(
        {
            "kafka_topic": ["t"],
            "kafka_partition": pa.array([partition], pa.int32()),
            "kafka_offset": pa.array([offset], pa.int64()),
            "kafka_timestamp": pa.array([None], schema.TIMESTAMP),
            "kafka_key": pa.array([None], pa.string()),
        }
    )
    table = dead_letters.dead_letter_table(
        raw_values=[b"{"], reasons=["bad_json: x"], fields=[None], batch_id=batch,
        ingested_at=datetime(2024, 6, 1), kafka=kafka,
    )  # fmt: skip
    dead_letters.write(table, settings.dead_letter_dir(), f"t{topic_id and '-t' + topic_id}-p{partition}-o{offset}-{offset}.parquet")


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDSET_TOPIC", "t")


def coverage() -> dict[int, dict]:
    found = checks.offset_coverage(settings.raw_dir(), settings.dead_letter_dir(), "t")
    return {c["partition"]: c for c in found}


def test_contiguous_offsets_with_redeliveries_and_dead_letters_pass() -> None:
    write_kafka_rows(list(range(0, 100)))
    write_kafka_rows(list(range(50, 100)) + list(range(101, 150)), batch="b2")  # 50 re-delivered
    write_dead_letter(100)
    write_kafka_rows(list(range(0, 10)), partition=1)
    c = coverage()
    assert c[0] == {
        "topic_id": "", "partition": 0, "first_offset": 0, "last_offset": 149, "distinct_offsets": 150,
        "missing_offsets": 0, "redelivered": 50, "row_and_dead_letter": 0,
    }  # fmt: skip
    assert c[1]["distinct_offsets"] == 10 and c[1]["missing_offsets"] == 0
    result = checks.raw_offsets_contiguous()
    assert result.passed
    assert checks.batch_counts(settings.raw_dir(), settings.dead_letter_dir(), "b2") == {
        "rows": 99, "dead_letters": 0, "distinct_offsets": 99,
    }  # fmt: skip


def test_a_gap_or_an_offset_both_row_and_dead_letter_fails() -> None:
    write_kafka_rows(list(range(0, 40)) + list(range(45, 60)))
    write_dead_letter(10)
    c = coverage()[0]
    assert (c["missing_offsets"], c["row_and_dead_letter"]) == (5, 1)
    result = checks.raw_offsets_contiguous()
    assert not result.passed
    assert "partition 0: 5 offsets missing between 0 and 59, 1 both row and dead letter" in result.description


def test_an_empty_raw_zone_passes() -> None:
    assert coverage() == {}
    assert checks.raw_offsets_contiguous().passed


A, B = "A" * 22, "B" * 22  # two generations' topic ids (a topic reset, then new_generation)


def test_topic_reset_generations_are_each_contiguous_and_a_row_of_one_is_no_dead_letter_of_the_other() -> None:
    from pipeline_assets import lost_offsets

    write_kafka_rows(list(range(0, 50)) + list(range(100, 200)), topic_id=A)  # retention deleted 50..99 unread
    lost_offsets.record(settings.raw_dir(), "t", 0, 50, 100, A)
    write_dead_letter(200, topic_id=A)
    write_kafka_rows(list(range(0, 50)) + [20], batch="b2", topic_id=B)  # 20 re-delivered
    write_kafka_rows([200], batch="b2", topic_id=B)  # B's row at A's dead letter's offset
    write_kafka_rows(list(range(50, 200)), batch="b2", topic_id=B)
    result = checks.raw_offsets_contiguous()
    assert result.passed, result.description
    found = [(c["topic_id"], c["first_offset"], c["last_offset"], c["redelivered"], c["lost_upstream"])
             for c in result.metadata["partitions"].data]  # fmt: skip
    assert found == [(A, 0, 200, 0, 50), (B, 0, 200, 1, 0)]  # A's lost range is not B's

    write_dead_letter(30, batch="b3", topic_id=B)  # within one generation: both a row and a dead letter
    result = checks.raw_offsets_contiguous()
    assert result.description == f"partition 0 of topic id {B}: 0 offsets missing between 0 and 200, 1 both row and dead letter"
