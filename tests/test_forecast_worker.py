"""The demo's forecast worker: nothing before two weeks of data, forecasts right after, none again
until a newer hour; and the demo starts it (outside the live cycle)."""

import duckdb

from pipeline_assets.insights import forecast as fc
from pipeline_assets.insights import worker


def make_warehouse(path, hours):
    with duckdb.connect(str(path)) as con:
        con.execute(
            f"""CREATE OR REPLACE TABLE clean_queries AS
            SELECT 'serverless' AS deployment, 3::BIGINT AS instance_id,
                   TIMESTAMP '2024-03-01' + INTERVAL (h) HOUR + INTERVAL (k * 15) MINUTE AS arrival_timestamp,
                   60000.0 AS execution_duration_ms
            FROM range({hours}) AS a(h), range(1 + (h % 24 > 8)::INT) AS b(k)"""
        )


def tables(path):
    with duckdb.connect(str(path), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_worker_forecasts_once_two_weeks_are_in(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("REDSET_WAREHOUSE", str(path))
    assert worker.run_once(path) is None  # no warehouse yet
    make_warehouse(path, 13 * 24)
    assert worker.run_once(path) is None and "workload_forecasts" not in tables(path)
    make_warehouse(path, 15 * 24)
    newest = worker.run_once(path)
    assert str(newest) == "2024-03-15 23:00:00"
    with duckdb.connect(str(path)) as con:
        served = con.execute(
            "SELECT count(*), min(forecast) FROM workload_forecasts WHERE model = ? AND metric = 'queries'", [fc.DEFAULT_MODEL]
        ).fetchone()
        assert served[0] == fc.HORIZON and served[1] >= 1
        assert con.execute("SELECT count(DISTINCT model) FROM forecast_backtest").fetchone()[0] == len(fc.MODELS)
        con.execute("DROP TABLE workload_forecasts")
    assert worker.run_once(path, newest) == newest and "workload_forecasts" not in tables(path)  # no newer hour: skipped


def test_demo_starts_the_worker(monkeypatch):
    from pipeline_assets.demo import session

    spawned = []
    monkeypatch.setattr(session.Demo, "spawn", lambda self, name, cmd, **kw: spawned.append((name, cmd)))
    monkeypatch.setenv("REDSET_ENGINE", "duckdb")
    session.Demo(source=None, rows=0, speed=None).start_forecasts()
    [(name, cmd)] = spawned
    assert name == "forecasts" and cmd[1:3] == ["-m", "pipeline_assets.insights.worker"]
