"""Robust seasonal statistics: `robust_seasonal`, the served model, and `robust_select` (numpy only).

Real hourly series burst and shift level (docs/redset-data.md), so one bad week pulls a mean away
while medians and trimmed means hold. `robust_seasonal` forecasts next week as the mean of two
robust estimates: the median of the same hour over the last 10 weeks, and a trimmed mean of the
same hour over those weeks each divided by its own median level, times the level of the last two
weeks (so a level shift moves it within two weeks while a single burst or outlier week does not).
Its band: the 80 % quantiles of its own errors on the last 7 days, each day forecast 24 h ahead
from the hours before it.

`robust_select` chooses per series and per origin among CANDIDATES: each forecasts the last
SELECT_DAYS days of the history, 24 h ahead from each day's start, from the hours before that
day only; the lowest mean absolute error there is served, with those errors as its band. It sees
only the history before the origin: the hours being forecast never pick the model (the leak test
in tests/test_forecast_robust.py).
"""

from __future__ import annotations

import numpy as np

from pipeline_assets.insights.baselines import DAY, LEVEL, SEASON, Forecast, band, seasonal_naive, weeks_back

SELECT_DAYS = 7
LEVEL_HOURS = 48
WEEKS = 10  # ~2.5 months: Redset's three months, and bounded cost
TRIM = 0.3  # share of weeks left out at each end of the trimmed mean


def median_10w_mean(y: np.ndarray, h: int) -> np.ndarray:
    """The median of the same hour over the last 10 weeks."""
    return np.resize(np.maximum(np.median(weeks_back(y, WEEKS), axis=0), 0), h)


def normalized_trimmed_mean(y: np.ndarray, h: int) -> np.ndarray:
    """Each of the last 10 weeks divided by its own median (its level), the 30 %-trimmed mean of
    the same hour over those normalized weeks (the hour-of-week shape), times the median level of
    the last 2 weeks. A week with a zero median (idle) leaves the plain 10-week median."""
    w = weeks_back(y, WEEKS)
    levels = np.median(w, axis=1)
    if len(w) < 2 or (levels <= 0).any():
        return median_10w_mean(y, h)
    shape = np.sort(w / levels[:, None], axis=0)
    k = int(len(w) * TRIM)
    return np.resize(np.maximum(shape[k : len(w) - k].mean(axis=0) * np.median(levels[-2:]), 0), h)


def robust_seasonal_mean(y: np.ndarray, h: int) -> np.ndarray:
    """The mean of median_10w and normalized_trimmed_mean (two robust estimates of next week)."""
    return 0.5 * (median_10w_mean(y, h) + normalized_trimmed_mean(y, h))


def median_4w_level_mean(y: np.ndarray, h: int) -> np.ndarray:
    """The 4-week median profile times the square root of (median of the last 48 h over the median
    of what that profile said for them), clipped to [0.5, 2]: follows a level shift within days."""
    profile = np.median(weeks_back(y, 4), axis=0)
    if len(y) < 2 * SEASON:
        return np.resize(np.maximum(profile, 0), h)
    said = np.median(weeks_back(y[:-LEVEL_HOURS], 4), axis=0)[:LEVEL_HOURS]
    recent, expected = np.median(y[-LEVEL_HOURS:]), np.median(said)
    ratio = float(np.clip(np.sqrt(recent / expected), 0.5, 2.0)) if recent > 0 and expected > 0 else 1.0
    return np.resize(np.maximum(profile * ratio, 0), h)


CANDIDATES = {
    "robust_seasonal": robust_seasonal_mean,
    "median_10w": median_10w_mean,
    "median_4w_level": median_4w_level_mean,
}


def inner_errors(y: np.ndarray, candidates=CANDIDATES, days: int = SELECT_DAYS) -> dict[str, np.ndarray]:
    """Per candidate, its errors (actual - forecast) on the last `days` days of y, each day
    forecast 24 h ahead from the hours before it; days with under a week before them are skipped."""
    starts = [len(y) - DAY * k for k in range(days, 0, -1) if len(y) - DAY * k >= SEASON]
    return {
        name: (np.concatenate([y[s : s + DAY] - mean(y[:s], DAY) for s in starts]) if starts else np.zeros(0))
        for name, mean in candidates.items()
    }


def choose(y: np.ndarray, candidates=CANDIDATES, days: int = SELECT_DAYS) -> tuple[str, np.ndarray]:
    """The candidate with the lowest mean absolute error on the last `days` days of y (ties: the
    first in `candidates`), and its errors there."""
    errors = inner_errors(y, candidates, days)
    name = min(errors, key=lambda n: float(np.mean(np.abs(errors[n]))) if errors[n].size else np.inf)
    return name, errors[name]


def robust_seasonal(y: np.ndarray, h: int, level: float = LEVEL) -> Forecast:
    """The served model: robust_seasonal_mean, its band from its errors on the last 7 days, each
    forecast 24 h ahead from the hours before it (the baseline while under a week and a day)."""
    y = np.asarray(y, dtype=float)
    if len(y) < SEASON + DAY:
        return seasonal_naive(y, h, level)
    errors = inner_errors(y, {"robust_seasonal": robust_seasonal_mean})["robust_seasonal"]
    return band(robust_seasonal_mean(y, h), errors, level)


def robust_select(y: np.ndarray, h: int, level: float = LEVEL, candidates=CANDIDATES) -> Forecast:
    """The served model (see the module doc); the baseline while the series is under a week and a day."""
    y = np.asarray(y, dtype=float)
    if len(y) < SEASON + DAY:
        return seasonal_naive(y, h, level)
    name, errors = choose(y, candidates)
    return band(candidates[name](y, h), errors, level)


def chosen(y: np.ndarray, candidates=CANDIDATES) -> str | None:
    """Which candidate robust_select serves for history y (None: too short, the baseline serves)."""
    return choose(np.asarray(y, dtype=float), candidates)[0] if len(y) >= SEASON + DAY else None


