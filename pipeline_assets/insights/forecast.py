"""Hourly workload forecasts and their backtest, for any hourly series (no Dagster here).

Input: a long frame (series_id, hour, value). Each series is made dense from its first to its last
hour, missing hours counting 0, then every model in MODELS forecasts the next hours with an 80 %
band:
- the four simple baselines (baselines.py): `seasonal_naive`, the same hour last week (the
  baseline of MASE); `mean_4w` and `median_4w`, the mean and the median of the same hour over the
  last 4 weeks; `blend_week_mean`, half last week and half that mean;
- `robust_seasonal` (robust.py), DEFAULT_MODEL, the one the dashboards show and load_surge judges
  by: robust seasonal statistics over 10 weeks with a robust level;
- `robust_select` (robust.py): per series and origin the candidate with the lowest error on the
  7 days before the origin;
- `decompose_ses`: statsmodels' classical decomposition gives the hour-of-week profile averaged
  over the last 8 weeks (so one noisy week counts less than in the baseline); the rest is followed
  by statsmodels' simple exponential smoothing. (MSTL + ETS was tried: ~3 s a fit here, too slow
  for 14 origins per instance and metric.)

Backtest: from each of the last 14 daily origins, 24 h ahead; MASE is the mean absolute error over
the horizon divided by the mean |y_t - y_(t-168)| of the series before the origin (m = 168), sMAPE
is the mean of 2|y - f| / (|y| + |f|) with 0/0 counted as 0; both averaged over origins.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline_assets.insights import robust
from pipeline_assets.insights.baselines import BASELINES, DAY, LEVEL, SEASON, Forecast, seasonal_naive
from pipeline_assets.insights.baselines import band as _band

HORIZON = SEASON
BACKTEST_ORIGINS = 14
BACKTEST_HORIZON = DAY
SMOOTHING = 0.05
FIT_WEEKS = 8  # decompose_ses fits the last 8 weeks: bounded cost, and it follows a workload that changed


def dense_hourly(frame: pd.DataFrame, series: str = "series_id", hour: str = "hour", value: str = "value") -> pd.DataFrame:
    """(series_id, hour, value) with every hour from each series' first to its last, missing hours 0."""
    missing = [c for c in (series, hour, value) if c not in frame.columns]
    if missing:
        raise ValueError(f"hourly series frame lacks column(s) {missing}; it has {list(frame.columns)}")
    hours = pd.to_datetime(frame[hour])
    if (hours != hours.dt.floor("h")).any():
        raise ValueError(f"column {hour!r} holds times that are not whole hours")
    data = pd.DataFrame({"series_id": frame[series], "hour": hours, "value": frame[value].astype(float)})
    data = data.groupby(["series_id", "hour"], as_index=False)["value"].sum()
    filled = []
    for key, part in data.groupby("series_id", sort=True):
        grid = pd.date_range(part["hour"].min(), part["hour"].max(), freq="h")
        values = part.set_index("hour")["value"].reindex(grid, fill_value=0.0)
        filled.append(pd.DataFrame({"series_id": key, "hour": grid, "value": values.to_numpy()}))
    if not filled:
        return pd.DataFrame({"series_id": [], "hour": pd.to_datetime([]), "value": []})
    return pd.concat(filled, ignore_index=True)


def decompose_ses(y: np.ndarray, h: int, level: float = LEVEL) -> Forecast:
    """statsmodels' classical decomposition: the hour-of-week profile averaged over the last weeks
    (so one noisy week counts 1/8, not all as in the baseline), repeated ahead, plus the level of
    the rest by statsmodels' simple exponential smoothing; the band from its in-sample residuals."""
    from statsmodels.tsa.holtwinters import SimpleExpSmoothing  # ~1 s import: only when used
    from statsmodels.tsa.seasonal import seasonal_decompose

    y = np.asarray(y[-FIT_WEEKS * SEASON :], dtype=float)
    if len(y) < 2 * SEASON:  # the decomposition needs two whole weeks
        return seasonal_naive(y, h, level)
    seasonal = np.asarray(seasonal_decompose(y, period=SEASON, two_sided=False).seasonal)
    adjusted = y - seasonal
    # A fixed, small smoothing weight: the level follows a lasting change within days, and no
    # optimizer runs (it cost ~0.2 s a fit, x 14 origins x instances x metrics).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its AIC divides by a zero error on a flat series
        fit = SimpleExpSmoothing(adjusted, initialization_method="known", initial_level=adjusted[:SEASON].mean()).fit(
            smoothing_level=SMOOTHING, optimized=False
        )
        mean = np.resize(seasonal[-SEASON:], h) + fit.forecast(h)
    return _band(mean, adjusted - fit.fittedvalues, level)


Model = Callable[[np.ndarray, int, float], Forecast]
MODELS: dict[str, Model] = {
    **BASELINES,
    "decompose_ses": decompose_ses,
    "robust_seasonal": robust.robust_seasonal,
    "robust_select": robust.robust_select,
}
BASELINE = "seasonal_naive"  # MASE's scale, and what a series under a week and a day gets
DEFAULT_MODEL = "robust_seasonal"  # served: the dashboards' band, load_surge's threshold


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, m: int = SEASON) -> float:
    """Mean absolute error scaled by the in-sample mean |y_t - y_(t-m)|; NaN when that is 0 or undefined."""
    if len(insample) <= m:
        return float("nan")
    scale = np.mean(np.abs(insample[m:] - insample[:-m]))
    return float(np.mean(np.abs(actual - forecast)) / scale) if scale > 0 else float("nan")


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean of 2|y - f| / (|y| + |f|), an hour with y = f = 0 counting 0 (range 0..2)."""
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.divide(2 * np.abs(actual - forecast), denominator, out=np.zeros(len(actual)), where=denominator > 0)
    return float(np.mean(terms))


def backtest_series(
    y: np.ndarray,
    models: dict[str, Model] = MODELS,
    origins: int = BACKTEST_ORIGINS,
    horizon: int = BACKTEST_HORIZON,
    history: list[tuple[str, int, Forecast]] | None = None,
) -> list[dict[str, object]]:
    """Per model: mean MASE and sMAPE over the daily origins that have a week and an hour of history
    before them (MASE over the origins with a nonzero scale), and how many origins there were.
    `history`, when given, receives every out-of-sample forecast as (model, origin index, Forecast)."""
    y = np.asarray(y, dtype=float)
    starts = [len(y) - horizon * k for k in range(origins, 0, -1)]
    starts = [s for s in starts if s > SEASON]
    rows = []
    for name, model in models.items():
        mases, smapes = [], []
        for s in starts:
            fc = model(y[:s], horizon, LEVEL)
            predicted = fc.mean
            if history is not None:
                history.append((name, s, fc))
            mases.append(mase(y[s : s + horizon], predicted, y[:s]))
            smapes.append(smape(y[s : s + horizon], predicted))
        finite = [v for v in mases if np.isfinite(v)]
        rows.append(
            {
                "model": name,
                "mase": float(np.mean(finite)) if finite else float("nan"),
                "smape": float(np.mean(smapes)) if smapes else float("nan"),
                "origins": len(starts),
            }
        )
    return rows


def _series(frame: pd.DataFrame) -> list[tuple[object, pd.DatetimeIndex, np.ndarray]]:
    dense = dense_hourly(frame)
    return [
        (key, pd.DatetimeIndex(part["hour"]), part["value"].to_numpy())
        for key, part in dense.groupby("series_id", sort=True)
    ]


def backtest(frame: pd.DataFrame, models: dict[str, Model] = MODELS) -> pd.DataFrame:
    """(series_id, model, mase, smape, origins) for every series of a (series_id, hour, value) frame."""
    return backtest_with_history(frame, models)[0]


def backtest_with_history(frame: pd.DataFrame, models: dict[str, Model] = MODELS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """backtest() plus its out-of-sample forecasts: (series_id, hour, model, origin, forecast, lower,
    upper), each backtested hour forecast from the origin before it (at most 24 h ahead)."""
    rows, parts = [], []
    for key, hours, y in _series(frame):
        history: list[tuple[str, int, Forecast]] = []
        rows += [{"series_id": key, **row} for row in backtest_series(y, models, history=history)]
        for name, s, fc in history:
            ahead = hours[s : s + len(fc.mean)]  # the last origin's horizon may run past the series
            n = len(ahead)
            parts.append(pd.DataFrame({"series_id": key, "hour": ahead, "model": name, "origin": hours[s],
                                       "forecast": fc.mean[:n], "lower": fc.lower[:n], "upper": fc.upper[:n]}))  # fmt: skip
    backtests = pd.DataFrame(rows, columns=["series_id", "model", "mase", "smape", "origins"])
    columns = ["series_id", "hour", "model", "origin", "forecast", "lower", "upper"]
    return backtests, (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns))


def forecast(frame: pd.DataFrame, models: dict[str, Model] = MODELS, horizon: int = HORIZON) -> pd.DataFrame:
    """(series_id, hour, model, forecast, lower, upper) for the `horizon` hours after each series'
    last hour; series shorter than a day get none (the baseline has nothing to repeat)."""
    parts = []
    for key, hours, y in _series(frame):
        if len(y) < DAY:
            continue
        ahead = pd.date_range(hours[-1] + pd.Timedelta(hours=1), periods=horizon, freq="h")
        for name, model in models.items():
            fc = model(y, horizon, LEVEL)
            parts.append(
                pd.DataFrame(
                    {"series_id": key, "hour": ahead, "model": name, "forecast": fc.mean, "lower": fc.lower, "upper": fc.upper}
                )
            )
    columns = ["series_id", "hour", "model", "forecast", "lower", "upper"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def summary(backtests: pd.DataFrame) -> pd.DataFrame:
    """Per model over series: median MASE and sMAPE, series backtested, and series won (the lowest
    MASE of all models; ties to each), best (lowest median MASE) first. The table `redset forecast`
    prints and the asset logs."""
    scored = backtests[np.isfinite(backtests["mase"].astype(float))]
    best = scored.groupby("series_id")["mase"].transform("min")
    wins = scored[scored["mase"] == best].groupby("model").size()
    table = backtests.groupby("model").agg(mase=("mase", "median"), smape=("smape", "median"), series=("series_id", "nunique"))
    table["won"] = wins.reindex(table.index, fill_value=0).astype(int)
    return table.sort_values("mase").reset_index()
