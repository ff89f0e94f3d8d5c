"""The four simple seasonal baselines and the robust seasonal statistics the served model picks
from (numpy only). Every model takes the history y (hours before the origin), a horizon h and a
band level, and returns a Forecast: its mean and a band from the empirical quantiles of its past
residuals, never below 0 (counts and hours).

Baselines (docs/redset-data.md's rows): the same hour last week; the mean, and the median, of the
same hour over the last 4 weeks; the blend of last week and that mean. While a series is younger
than 4 weeks they use the whole weeks it has (the baseline: a day while it is younger than a week).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SEASON = 168  # hours in a week: the baseline's lag and MASE's m
DAY = 24
LEVEL = 0.8


class Forecast(NamedTuple):
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def band(mean: np.ndarray, residuals: np.ndarray, level: float) -> Forecast:
    """mean plus the empirical quantiles of past residuals; counts and hours are never negative."""
    residuals = residuals[np.isfinite(residuals)]
    low, high = np.quantile(residuals, [(1 - level) / 2, (1 + level) / 2]) if residuals.size else (0.0, 0.0)
    return Forecast(np.maximum(mean, 0), np.maximum(mean + low, 0), np.maximum(mean + high, 0))


def seasonal_naive(y: np.ndarray, h: int, level: float = LEVEL) -> Forecast:
    """The same hour one week earlier (one day earlier while the series is younger than a week);
    the band from the past differences at that lag."""
    lag = SEASON if len(y) >= SEASON else DAY
    if len(y) < lag:
        raise ValueError(f"seasonal_naive needs at least {DAY} hours, got {len(y)}")
    mean = np.resize(y[-lag:], h)  # repeats the last week (day) for longer horizons
    return band(mean, y[lag:] - y[:-lag], level)


def weeks_back(y: np.ndarray, weeks: int, period: int = SEASON) -> np.ndarray:
    """(k, period): the last k <= `weeks` whole periods of y, oldest first."""
    k = min(weeks, len(y) // period)
    return np.asarray(y[len(y) - k * period :], dtype=float).reshape(k, period)


def _profile_model(stat, weeks: int):
    """A model repeating `stat` over the same hour of the last `weeks` weeks; its band from the
    residuals of the same statistic, taken week by week over the history (one-week-ahead errors)."""

    def model(y: np.ndarray, h: int, level: float = LEVEL) -> Forecast:
        if len(y) < SEASON:
            return seasonal_naive(y, h, level)
        mean = np.resize(stat(weeks_back(y, weeks)), h)
        return band(mean, _profile_residuals(y, stat, weeks), level)

    return model


def _profile_residuals(y: np.ndarray, stat, weeks: int, last: int = 4) -> np.ndarray:
    """Errors of the statistic on the last `last` weeks, each from the weeks before it."""
    out = []
    for k in range(1, last + 1):
        end = len(y) - (k - 1) * SEASON
        past = y[: end - SEASON]
        if len(past) < SEASON:
            break
        out.append(y[end - SEASON : end] - stat(weeks_back(past, weeks)))
    return np.concatenate(out) if out else np.asarray(y[SEASON:] - y[:-SEASON], dtype=float)


def _mean(w: np.ndarray) -> np.ndarray:
    return w.mean(axis=0)


def _median(w: np.ndarray) -> np.ndarray:
    return np.median(w, axis=0)


def _blend(w: np.ndarray) -> np.ndarray:
    return 0.5 * w[-1] + 0.5 * w.mean(axis=0)


def _trimmed(w: np.ndarray) -> np.ndarray:
    """Mean of the same hour over the weeks with its highest and lowest left out (>= 3 weeks)."""
    if len(w) < 3:
        return np.median(w, axis=0)
    s = np.sort(w, axis=0)
    return s[1:-1].mean(axis=0)


mean_4w = _profile_model(_mean, 4)
median_4w = _profile_model(_median, 4)
blend_week_mean = _profile_model(_blend, 4)
BASELINES = {"seasonal_naive": seasonal_naive, "mean_4w": mean_4w, "median_4w": median_4w, "blend_week_mean": blend_week_mean}
