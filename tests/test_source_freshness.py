"""`dbt source freshness` on the raw zone's ingested_at, and its result in the dashboards' status line."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dbt_support import dbt_paths, kafka_rows, write_raw_file
from pipeline_assets.serving import source_freshness
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.freshness_check import SWITCH, refresh
from pipeline_assets.source import generator

HOURS_OLD = 30


def test_the_status_line_words_each_result() -> None:
    def state(status: str, age: float) -> dict:
        criteria = {"warn_after": {"count": 6, "period": "hour"}, "error_after": {"count": 1560, "period": "minute"}}
        result = {"status": status, "max_loaded_at": "2024-03-04T00:05:00+00:00", "max_loaded_at_time_ago_in_s": age, "criteria": criteria}
        return source_freshness.summarize({"results": [result]})

    assert source_freshness.status_text(state("pass", 180)) == "raw zone fresh: last ingest 3 min ago"
    assert source_freshness.status_text(state("warn", 7 * 3600)) == "raw zone WARN: last ingest 7.0 h ago (over 360 min)"
    assert source_freshness.status_text(state("error", 2 * 86400)) == "raw zone ERROR: last ingest 2.0 d ago (over 1560 min)"
    unknown = source_freshness.summarize(None, "IO Error: No files found")
    assert source_freshness.status_text(unknown) == "raw zone freshness unknown (IO Error: No files found)"
    assert source_freshness.status_text(None) is None


@pytest.mark.slow
def test_a_stale_raw_zone_warns_or_errors_and_the_status_line_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv(SWITCH, "1")
    serving = tmp_path / "serving"
    ingested = (datetime.now(timezone.utc) - timedelta(hours=HOURS_OLD)).replace(tzinfo=None)
    rows = generator.generate(rows=20, seed=3, deployment="both", start=date(2024, 3, 1), days=1).to_pylist()
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", ingested), "redset.queries-p0-o0.parquet")

    # The defaults (batch): warn after 6 h, error after 26 h; 30 h is an error.
    state = refresh(serving)
    assert state["status"] == "error", state
    assert abs(state["age_seconds"] - HOURS_OLD * 3600) < 600
    assert (state["warn_after_minutes"], state["error_after_minutes"]) == (360, 1560)
    assert ServingData(serving).raw_freshness() == "raw zone ERROR: last ingest 30.0 h ago (over 1560 min)"

    # Thresholds for a steadier stream, error beyond the age: a warning.
    monkeypatch.setenv("REDSET_RAW_FRESHNESS_WARN_MINUTES", "60")
    monkeypatch.setenv("REDSET_RAW_FRESHNESS_ERROR_MINUTES", str(40 * 60))
    assert refresh(serving)["status"] == "warn"
    assert ServingData(serving).raw_freshness() == "raw zone WARN: last ingest 30.0 h ago (over 60 min)"
