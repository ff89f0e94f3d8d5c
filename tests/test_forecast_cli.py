"""`redset forecast FILE` on a CSV with other column names, and on an event log with --count: the
table it prints is forecast.summary of forecast.backtest, the asset's code."""

import re

import numpy as np
import pandas as pd

from pipeline_assets.cli.main import main
from pipeline_assets.insights import forecast as fc
from pipeline_assets.insights import hard_series


def rows_of(out: str) -> dict[str, list[str]]:
    return {m.group(1): m.group(0).split() for m in re.finditer(r"^(\w+)\s+[\d.]+\s+[\d.]+\s+\d+\s+\d+.*$", out, re.M)}


def test_forecast_prints_every_model_from_a_csv_with_other_column_names(tmp_path, capsys):
    frame = hard_series.frame("provisioned", 6, seed=1, weeks=5)
    path = tmp_path / "counts.csv"
    frame.rename(columns={"series_id": "cluster", "hour": "ts", "value": "n"}).to_csv(path, index=False)
    assert main(["forecast", str(path), "--series", "cluster", "--hour", "ts", "--value", "n"]) == 0
    out = capsys.readouterr().out
    table = rows_of(out)
    assert set(table) == set(fc.MODELS)
    expected = fc.summary(fc.backtest(frame)).set_index("model")
    for model, cells in table.items():
        assert float(cells[1]) == round(expected.loc[model, "mase"], 3)
        assert int(cells[3]) == 6 and int(cells[4]) == expected.loc[model, "won"]
    assert "(served)" in " ".join(table[fc.DEFAULT_MODEL]) and "(baseline)" in " ".join(table["median_4w"])


def test_forecast_counts_events_per_hour(tmp_path, capsys):
    """An event log (one row per query): --count makes the hourly counts, empty hours 0."""
    rng = np.random.default_rng(0)
    hours = pd.date_range("2024-03-01", periods=3 * 168, freq="h")
    counts = rng.poisson(3, len(hours))
    events = pd.DataFrame({"instance": "a", "arrival": np.repeat(hours, counts) + pd.Timedelta(minutes=7)})
    path = tmp_path / "log.parquet"
    events.to_parquet(path)
    assert main(["forecast", str(path), "--series", "instance", "--hour", "arrival", "--count", "--models", "seasonal_naive"]) == 0
    out = capsys.readouterr().out
    direct = fc.summary(fc.backtest(pd.DataFrame({"series_id": "a", "hour": hours, "value": counts}), {"seasonal_naive": fc.seasonal_naive}))
    assert float(rows_of(out)["seasonal_naive"][1]) == round(direct["mase"][0], 3)
    assert f"{len(hours) - (counts == 0).sum():,} rows" in out
