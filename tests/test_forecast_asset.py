"""workload_forecasts end to end on a tiny warehouse: both tables written with the agreed schemas."""

from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from pipeline_assets.insights import forecast as fc
from pipeline_assets.insights.forecast_asset import workload_forecasts
from pipeline_assets.warehouse.resource import warehouse_resource


def test_asset_writes_forecasts_and_backtest(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("REDSET_WAREHOUSE", str(path))
    with duckdb.connect(str(path)) as con:
        # Instance 7: 3 queries of 20 minutes each every hour for 3 weeks plus one hour still filling.
        con.execute(
            """CREATE TABLE clean_queries AS
            SELECT 'provisioned' AS deployment, 7::BIGINT AS instance_id,
                   TIMESTAMP '2024-03-01' + INTERVAL (h) HOUR + INTERVAL (k * 10) MINUTE AS arrival_timestamp,
                   1200000.0 AS execution_duration_ms
            FROM range(3 * 168 + 1) AS a(h), range(3) AS b(k)"""
        )
    result = dg.materialize([workload_forecasts], resources={"warehouse": warehouse_resource(path)})
    assert result.success
    with duckdb.connect(str(path), read_only=True) as con:
        forecasts = con.execute(
            "SELECT metric, model, count(*), min(hour), min(forecast), max(forecast) FROM workload_forecasts GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        backtest = con.execute("SELECT metric, model, origins, smape FROM forecast_backtest ORDER BY ALL").fetchall()
        history = con.execute(
            "SELECT metric, model, count(*), count(DISTINCT hour), min(hour), max(hour), min(forecast), max(forecast), "
            "bool_and(origin <= hour AND hour < origin + INTERVAL 24 HOUR) FROM forecast_history GROUP BY ALL"
        ).fetchall()
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'workload_forecasts'").fetchall())
    first = datetime(2024, 3, 1) + timedelta(hours=3 * 168)
    # The filling hour is left out, so the week ahead starts at it; the flat series forecasts itself.
    for metric, model, n, start, low, high in forecasts:
        expected = 3.0 if metric == "queries" else 1.0
        assert (n, start) == (168, first) and low == pytest.approx(expected) and high == pytest.approx(expected)
    assert {(m, mo) for m, mo, *_ in forecasts} == {(m, mo) for m in ("queries", "exec_hours") for mo in fc.MODELS}
    # Origins at hours 168, 192, .., 480: the first has no week-over-week error before it, so 13.
    assert all(origins == 13 and smape == pytest.approx(0) for *_, origins, smape in backtest)
    # forecast_history: the 13 origins' 24 h each, hours 192..503, each from the origin before it.
    assert len(history) == 2 * len(fc.MODELS)
    for metric, model, n, distinct, start, end, low, high, before in history:
        expected = 3.0 if metric == "queries" else 1.0
        assert (n, distinct, start, end, before) == (312, 312, datetime(2024, 3, 1) + timedelta(hours=192), first - timedelta(hours=1), True)
        assert low == pytest.approx(expected) and high == pytest.approx(expected)
    assert types["instance_id"] == "BIGINT" and types["hour"] == "TIMESTAMP"
