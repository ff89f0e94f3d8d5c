"""The forecasting code on hand-built hourly series: dense fill, MASE/sMAPE by hand, and the better
model beating the baseline on a noisy, real-shaped series (not only on the regular generator)."""

import numpy as np
import pandas as pd
import pytest

from pipeline_assets.insights import forecast as fc


def test_dense_hourly_fills_missing_hours_with_zero_per_series():
    frame = pd.DataFrame(
        {
            "series_id": ["a", "a", "b"],
            "hour": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 03:00", "2024-03-02 05:00"]),
            "value": [2, 5, 7],
        }
    )
    dense = fc.dense_hourly(frame)
    assert dense[dense.series_id == "a"]["value"].tolist() == [2, 0, 0, 5]
    assert dense[dense.series_id == "b"]["value"].tolist() == [7]


def test_dense_hourly_names_a_missing_column():
    with pytest.raises(ValueError, match="value"):
        fc.dense_hourly(pd.DataFrame({"series_id": [1], "hour": [pd.Timestamp("2024-01-01")]}))


def test_mase_and_smape_by_hand():
    # In-sample with m = 2: |3-1| + |4-2| + |1-3| + |2-4| over 4 = 2.
    insample = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0])
    actual, predicted = np.array([2.0, 0.0, 4.0]), np.array([1.0, 0.0, 1.0])
    assert fc.mase(actual, predicted, insample, m=2) == pytest.approx((1 + 0 + 3) / 3 / 2)
    # sMAPE terms: 2*1/3, 0/0 -> 0, 2*3/5.
    assert fc.smape(actual, predicted) == pytest.approx((2 / 3 + 0 + 6 / 5) / 3)
    assert np.isnan(fc.mase(actual, predicted, np.ones(6), m=2))  # no in-sample error: undefined


def test_backtest_of_the_baseline_on_a_series_that_repeats_weekly_then_shifts():
    week = np.arange(fc.SEASON, dtype=float)
    y = np.concatenate([week, week + 1, week + 1])  # in-sample error 1 per hour after week 1
    [row] = fc.backtest_series(y, {"seasonal_naive": fc.seasonal_naive}, origins=3, horizon=24)
    # Origins in the third week: the last week repeats exactly, so the error is 0.
    assert row["origins"] == 3 and row["mase"] == pytest.approx(0.0) and row["smape"] == pytest.approx(0.0)
    [shifted] = fc.backtest_series(
        np.concatenate([week, week + 4]), {"seasonal_naive": fc.seasonal_naive}, origins=2, horizon=24
    )
    # Each origin's in-sample error is 4 on every hour past the first week; the forecast is 4 off.
    assert shifted["mase"] == pytest.approx(1.0)


def real_shaped(seed: int, weeks: int = 10) -> np.ndarray:
    """Hourly counts like real Redset instances: a weak daily cycle, no weekend dip, a level that
    wanders (AR(1) over hours) and Poisson noise, so the lag-168 autocorrelation is ~0.4."""
    rng = np.random.default_rng(seed)
    n = weeks * fc.SEASON
    hours = np.arange(n)
    daily = 1 + 0.3 * np.sin(2 * np.pi * hours / 24)
    weekly = np.exp(0.2 * rng.normal(size=fc.SEASON))[hours % fc.SEASON]  # no weekend dip
    wander = np.zeros(n)
    for t in range(1, n):
        wander[t] = 0.97 * wander[t - 1] + rng.normal(0, 0.08)
    return rng.poisson(20 * daily * weekly * np.exp(wander)).astype(float)


def autocorrelation(y: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(y[lag:], y[:-lag])[0, 1])


def test_better_model_beats_the_baseline_on_real_shaped_series():
    series = [real_shaped(seed) for seed in range(8)]
    weekend = [np.isin((np.arange(len(y)) // 24) % 7, [5, 6]) for y in series]
    ratios = [y[w].mean() / y[~w].mean() for y, w in zip(series, weekend)]
    assert 0.9 < np.median(ratios) < 1.2
    assert 0.2 < np.median([autocorrelation(y, fc.SEASON) for y in series]) < 0.6
    frame = pd.DataFrame(
        {
            "series_id": np.repeat(range(len(series)), len(series[0])),
            "hour": np.tile(pd.date_range("2024-03-01", periods=len(series[0]), freq="h"), len(series)),
            "value": np.concatenate(series),
        }
    )
    medians = fc.summary(fc.backtest(frame)).set_index("model")["mase"]
    assert medians["decompose_ses"] < 0.9 * medians["seasonal_naive"]


def test_forecast_covers_the_next_week_with_an_ordered_band():
    y = real_shaped(1, weeks=3)
    hours = pd.date_range("2024-03-01", periods=len(y), freq="h")
    out = fc.forecast(pd.DataFrame({"series_id": "x", "hour": hours, "value": y}))
    for model, part in out.groupby("model"):
        assert len(part) == fc.HORIZON
        assert part["hour"].min() == hours[-1] + pd.Timedelta(hours=1)
        assert (part["lower"] <= part["forecast"]).all() and (part["forecast"] <= part["upper"]).all()
        assert (part["lower"] >= 0).all()
    naive = out[out.model == "seasonal_naive"]["forecast"].to_numpy()
    assert np.array_equal(naive, y[-fc.SEASON :])
