"""Insights benchmark: forecast accuracy, anomaly tag rates and build times on generated rows.

    python bench/insights.py                    # 1M generated rows in a temporary raw zone
    python bench/insights.py --rows 100000 --seed 7

In one run, on a fresh raw zone (generated rows written as the raw dump writes them):
  1. `dbt build` of every model (and its tests) with the pipeline's environment, no partition window;
  2. the forecasts: workload_forecasts' table builder on the warehouse's hourly series, both tables written;
  3. `dbt build --select workload_anomalies` again, now that it can read the forecasts.
Prints and saves: the backtest per metric and model (median MASE, median sMAPE, instances won),
each anomaly tag's rate (target: >= 1 instance-hour and <= 5 % of them), and the build seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
from _common import Results, Stopwatch, data_env, environment, scratch_dir
from transform import DAYS, START, RawZoneFiller, generate

DEFAULT_ROWS = 1_000_000
TAGS = ("exec_spike", "heavy_spill", "queue_bound", "abort_burst", "load_surge")
MAX_TAG_SHARE = 0.05


def dbt_build(target: Path, *select: str) -> dict[str, float]:
    """`dbt build` in a subprocess with the pipeline's env; seconds per model from run_results.json."""
    from pipeline_assets import settings
    from pipeline_assets.warehouse.dbt_assets import dbt_env, dbt_executable

    args = [dbt_executable(), "build", "--quiet", "--project-dir", str(settings.DBT_PROJECT_DIR),
            "--profiles-dir", str(settings.DBT_PROJECT_DIR), "--target-path", str(target)]  # fmt: skip
    if select:
        args += ["--select", *select]
    with environment(dbt_env(None)):
        subprocess.run(args, check=True, env=dict(os.environ))
    run_results = json.loads((target / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in run_results["results"]
            if r["unique_id"].startswith("model.")}  # fmt: skip


def insights_models() -> list[str]:
    from pipeline_assets import settings

    return sorted(p.stem for p in (settings.DBT_PROJECT_DIR / "models" / "marts" / "insights").glob("*.sql"))


def run_forecasts(warehouse: Path) -> dict[str, Any]:
    """The asset's own steps (read the hourly series, build both tables, write them), timed."""
    import duckdb

    from pipeline_assets.insights.forecast_asset import HOURLY_SQL, forecast_tables, write_tables

    with Stopwatch() as watch:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            hourly = con.execute(HOURLY_SQL).df()
        forecasts, backtests, history = forecast_tables(hourly)
        write_tables(warehouse, forecasts, backtests, history)
    return {**watch.figures(), "backtests": backtests, "forecast_rows": len(forecasts)}


def backtest_table(backtests) -> list[dict[str, Any]]:
    """Per metric and model: median MASE and sMAPE over instances, and instances where it has the lowest MASE."""
    scored = backtests.dropna(subset=["mase"])
    best = scored.loc[scored.groupby(["metric", "deployment", "instance_id"])["mase"].idxmin()]
    wins = best.groupby(["metric", "model"]).size()
    medians = backtests.groupby(["metric", "model"])[["mase", "smape"]].median()
    instances = backtests.groupby(["metric", "model"])["instance_id"].size()
    return [{"metric": metric, "model": model, "median_mase": round(float(row.mase), 3),
             "median_smape": round(float(row.smape), 3), "instances": int(instances[(metric, model)]),
             "wins": int(wins.get((metric, model), 0))}
            for (metric, model), row in medians.iterrows()]  # fmt: skip


TAG_RATES_SQL = """
    WITH hours AS (SELECT deployment, instance_id, hour FROM main.query_metrics),
    covered AS (  -- hours with queries and a forecast made before them: load_surge's denominator
        SELECT DISTINCT h.* FROM hours h
        JOIN (SELECT deployment, instance_id, hour, metric FROM main.forecast_history
              UNION ALL SELECT deployment, instance_id, hour, metric FROM main.workload_forecasts) f
        USING (deployment, instance_id, hour) WHERE f.metric = 'queries'),
    tagged AS (
        SELECT tag, count(DISTINCT (deployment, instance_id, hour)) AS hours,
               count(DISTINCT (deployment, instance_id)) AS instances
        FROM main.workload_anomalies GROUP BY tag)
    SELECT t.tag, coalesce(a.hours, 0), coalesce(a.instances, 0),
           CASE WHEN t.tag = 'load_surge' THEN (SELECT count(*) FROM covered) ELSE (SELECT count(*) FROM hours) END
    FROM (SELECT unnest(?::VARCHAR[]) AS tag) t LEFT JOIN tagged a USING (tag)
"""


def tag_rates(warehouse: Path) -> list[dict[str, Any]]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(TAG_RATES_SQL, [list(TAGS)]).fetchall()
    out = []
    for tag, hours, instances, denominator in rows:
        share = hours / denominator if denominator else float("nan")
        out.append({"tag": tag, "instance_hours": hours, "denominator": denominator,
                    "denominator_is": "instance-hours with >= 1 query and a forecast made before them (forecast_history, workload_forecasts)" if tag == "load_surge"
                    else "instance-hours with >= 1 query",
                    "share": share, "instances": instances, "ok": hours >= 1 and share <= MAX_TAG_SHARE})  # fmt: skip
    return out


def print_tables(backtest: list[dict[str, Any]], tags: list[dict[str, Any]], seconds: dict[str, float]) -> None:
    print("\nbacktest (24 h ahead, last 14 daily origins), per instance")
    print(f"{'metric':<11} {'model':<16} {'median MASE':>11} {'median sMAPE':>12} {'instances':>9} {'wins':>5}")
    for r in backtest:
        print(f"{r['metric']:<11} {r['model']:<16} {r['median_mase']:>11.3f} {r['median_smape']:>12.3f} "
              f"{r['instances']:>9} {r['wins']:>5}")  # fmt: skip
    print(f"\nanomaly tags (target: >= 1 instance-hour and <= {MAX_TAG_SHARE:.0%} of the denominator)")
    print(f"{'tag':<12} {'inst-hours':>10} {'of':>8} {'share':>8} {'instances':>9} met  denominator")
    for r in tags:
        print(f"{r['tag']:<12} {r['instance_hours']:>10,} {r['denominator']:>8,} {r['share']:>8.3%} {r['instances']:>9} "
              f"{'yes' if r['ok'] else 'NO ':<4} {r['denominator_is']}")  # fmt: skip
    print("\nbuild seconds")
    for name, s in seconds.items():
        print(f"  {name:<40} {s:>8.2f}")


def run(rows: int, seed: int, keep: bool) -> Results:
    results = Results("insights", {"rows": rows, "seed": seed})
    with scratch_dir("insights", keep) as root, environment(data_env(root)):
        from pipeline_assets import settings

        with Stopwatch() as made:
            RawZoneFiller(settings.raw_dir(), settings.topic()).write(generate(rows, seed, START, DAYS), "bench-insights")
        print(f"generated {rows:,} rows into {settings.raw_dir()} in {made.seconds:.0f}s", flush=True)

        print("\n== dbt build, every model", flush=True)
        with Stopwatch() as full:
            models = dbt_build(root / "target-full")
        print(f"   {full.seconds:.1f}s", flush=True)
        print("\n== forecasts", flush=True)
        forecasts = run_forecasts(settings.warehouse_path())
        print(f"   {forecasts['seconds']:.1f}s", flush=True)
        print("\n== dbt build workload_anomalies, with the forecasts", flush=True)
        with Stopwatch() as anomalies:
            again = dbt_build(root / "target-anomalies", "workload_anomalies")

        backtest = backtest_table(forecasts["backtests"])
        tags = tag_rates(settings.warehouse_path())
        seconds = {"dbt build, every model and test (wall)": full.seconds,
                   **{f"model {m}": models.get(m, float("nan")) for m in insights_models()},
                   "forecasts: hourly read + fit + backtest + write (wall)": forecasts["seconds"],
                   "model workload_anomalies, with forecasts": again.get("workload_anomalies", float("nan")),
                   "dbt build workload_anomalies (wall)": anomalies.seconds}  # fmt: skip
        print_tables(backtest, tags, seconds)

        for r in backtest:
            results.add(f"{r['metric']} {r['model']}: median MASE / sMAPE / wins",
                        f"{r['median_mase']:.3f} / {r['median_smape']:.3f} / {r['wins']}")  # fmt: skip
        for r in tags:
            results.add(f"tag {r['tag']}: instance-hours of {r['denominator']:,}", r["instance_hours"], "", ">= 1", r["instance_hours"] >= 1)
            results.add(f"tag {r['tag']}: share ({r['instances']} instances)", round(100 * r["share"], 3), "%", "<= 5", r["share"] <= MAX_TAG_SHARE)
        for name, s in seconds.items():
            results.add(name, round(s, 2), "s")
        results.details |= {"backtest": backtest, "tags": tags, "seconds": seconds, "all_models_seconds": models,
                            "forecast_rows": forecasts["forecast_rows"], "thresholds": _thresholds()}  # fmt: skip
    return results


def _thresholds() -> dict[str, Any]:
    from pipeline_assets.warehouse.dbt_assets import project_var

    return project_var("anomalies")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="generated rows in the raw zone")
    parser.add_argument("--seed", type=int, default=42, help="the generator's seed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (raw zone, warehouse)")
    args = parser.parse_args()
    from pipeline_assets import settings

    if settings.engine() != "duckdb":  # it builds and reads the DuckDB warehouse file
        parser.error(f"this bench is DuckDB-only; unset REDSET_ENGINE (it is {settings.engine()})")
    results = run(args.rows, args.seed, args.keep)
    results.print_table()
    results.save()


if __name__ == "__main__":
    main()
