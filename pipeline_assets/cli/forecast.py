"""`redset forecast FILE`: the backtest table of every forecast model on anyone's hourly series.

FILE is Parquet or CSV with one row per series and hour (or, with no --value column given and
--count, one row per event, counted per hour). It runs forecast.backtest, the code the
workload_forecasts asset runs, and prints per model the median MASE (m = 168) and sMAPE over the
series, 24 h ahead from the last 14 daily origins, and how many series each model won.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def read_series(path: Path, series: str, hour: str, value: str | None) -> "pd.DataFrame":  # noqa: F821
    """(series_id, hour, value) from a Parquet or CSV file; without `value`, rows counted per hour."""
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(path, columns=[c for c in (series, hour, value) if c])
    else:
        raw = pd.read_csv(path, usecols=[c for c in (series, hour, value) if c])
    missing = [c for c in (series, hour, value) if c and c not in raw.columns]
    if missing:
        raise SystemExit(f"{path}: no column(s) {missing}; it has {list(raw.columns)}")
    hours = pd.to_datetime(raw[hour])
    if value is None:
        raw = raw.assign(**{hour: hours.dt.floor("h")}).groupby([series, hour]).size().reset_index(name="value")
        value, hours = "value", raw[hour]
    return pd.DataFrame({"series_id": raw[series].astype(str), "hour": hours, "value": raw[value]})


def format_table(table: "pd.DataFrame", default: str, baselines) -> str:  # noqa: F821
    lines = [f"{'model':<18} {'median MASE':>11} {'median sMAPE':>12} {'series':>6} {'won':>5}"]
    for row in table.itertuples():
        mark = "  (served)" if row.model == default else ("  (baseline)" if row.model in baselines else "")
        lines.append(f"{row.model:<18} {row.mase:>11.3f} {row.smape:>12.3f} {row.series:>6} {row.won:>5}{mark}")
    return "\n".join(lines)


def cmd_forecast(args: argparse.Namespace) -> int:
    from pipeline_assets.insights import forecast as fc
    from pipeline_assets.insights.baselines import BASELINES

    frame = read_series(Path(args.file), args.series, args.hour, None if args.count else args.value)
    models = fc.MODELS if not args.models else {m: fc.MODELS[m] for m in args.models.split(",")}
    backtests = fc.backtest(frame, models)
    print(f"{frame['series_id'].nunique()} series, {len(frame):,} rows; 24 h ahead from the last "
          f"{fc.BACKTEST_ORIGINS} daily origins, MASE m = {fc.SEASON}")  # fmt: skip
    print(format_table(fc.summary(backtests), fc.DEFAULT_MODEL, BASELINES))
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("forecast", parents=[common], help="backtest every forecast model on an hourly series file")
    p.add_argument("file", help="Parquet (.parquet) or CSV file")
    p.add_argument("--series", default="series_id", help="column naming the series (default series_id)")
    p.add_argument("--hour", default="hour", help="column with the hour (or the event time, with --count)")
    p.add_argument("--value", default="value", help="column with the hourly value (default value)")
    p.add_argument("--count", action="store_true", help="count rows per series and hour instead of reading --value")
    p.add_argument("--models", help="comma-separated models (default: all of forecast.MODELS)")
    p.set_defaults(func=cmd_forecast)
