"""Seeded hourly test series as hard to forecast as real Redset instances (numpy only, no I/O).

Real instances (docs/redset-data.md) are bursty and shift level, so one bad week pulls means and
seasonal averages away while robust statistics hold. Each series here is, per hour t,

    count_t ~ Poisson(level * profile[t % 168] * wander_t * shift_t * outlier_t * burst_t * noise_t)

- level: log-normal over series (a handful to thousands of queries an hour);
- profile: a daily cycle times a random hour-of-week pattern of per-series strength (weak on
  serverless-like series, whose lag-168 autocorrelation is ~0.13 against ~0.4 provisioned);
- wander: an AR(1) random walk of the log level (workloads drift over days);
- shift: in ~1/3 of series the level doubles or halves for at least a week (for good or for 1-3 weeks);
- outlier: in ~1/3 of series one whole week runs at x3..x6 (or x0.2);
- burst: about one burst a week, 1-4 hours at x4..x15;
- noise: hour-to-hour log-normal noise (burstiness beyond Poisson), and on serverless-like series
  idle hours (no query) that come in runs.
A share of series is flat: a steady timer (provisioned-like: a high steady rate, CV ~0.02;
serverless-like: the same count every hour, CV 0), as redset.md's CV quartiles show.
`frame()` gives the (series_id, hour, value) frame that forecast.backtest takes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEASON = 168
WEEKS = 10
START = pd.Timestamp("2024-03-01")  # a Friday, like Redset's first day
KINDS = ("provisioned", "serverless")

# Per kind: share of flat series, seasonal strength (sd of the log hour-of-week pattern), daily
# amplitude, hour-to-hour log noise, wander sd per hour, share of hours in idle runs.
PARAMS = {
    "provisioned": {"flat": 0.3, "weekly": (0.1, 0.8), "daily": (0.05, 2.0), "noise": (0.05, 0.3), "wander": 0.02, "idle": 0.0, "regular": 0.0},
    "serverless": {"flat": 0.55, "weekly": (0.0, 0.6), "daily": (0.0, 0.5), "noise": (0.3, 0.9), "wander": 0.03, "idle": 0.3, "regular": 0.4},
}


def one_series(rng: np.random.Generator, kind: str, weeks: int = WEEKS, flat: bool = False, shift: bool = False,
               outlier: bool = False) -> np.ndarray:
    """One hourly count series of `weeks` weeks (see the module doc); `flat`, `shift` and `outlier`
    say whether it is a steady timer, has a level shift, has an outlier week."""
    p = PARAMS[kind]
    n = weeks * SEASON
    hours = np.arange(n)
    level = float(np.exp(rng.normal(np.log(200), 1.3)))
    if flat:
        if kind == "serverless":
            return np.full(n, float(max(1, round(level))))
        return rng.poisson(level * 40, n).astype(float)  # a steady high rate: CV ~ 1/sqrt(rate)
    if rng.random() < p["regular"]:  # some serverless workloads are as regular as provisioned ones
        p = {**PARAMS["provisioned"], "idle": p["idle"]}
    daily = rng.uniform(*p["daily"]) * np.sin(2 * np.pi * (hours % 24 - rng.integers(24)) / 24)
    weekly = rng.normal(0, rng.uniform(*p["weekly"]), SEASON)[hours % SEASON]
    wander = np.zeros(n)
    steps = rng.normal(0, p["wander"], n)
    for t in range(1, n):
        wander[t] = 0.98 * wander[t - 1] + steps[t]
    log_rate = np.log(level) + daily + weekly + wander + rng.normal(0, rng.uniform(*p["noise"]), n)
    if shift:  # a level shift lasting at least a week
        start = int(rng.integers(2 * SEASON, n - SEASON))
        end = n if rng.random() < 0.5 else min(n, start + int(rng.integers(1, 4)) * SEASON)
        log_rate[start:end] += np.log(2.0 if rng.random() < 0.5 else 0.5)
    if outlier:  # a single outlier week
        start = int(rng.integers(0, n - SEASON))
        log_rate[start : start + SEASON] += np.log(rng.uniform(2, 4) if rng.random() < 0.8 else 0.25)
    for _ in range(rng.poisson(3 * weeks)):  # bursts of a few hours
        start = int(rng.integers(0, n))
        log_rate[start : start + int(rng.integers(1, 5))] += np.log(rng.uniform(2, 5))
    rate = np.exp(log_rate)
    if p["idle"] and rng.random() < 0.5:  # idle runs: hours with no query
        idle = np.repeat(rng.random(n // 6 + 1) < p["idle"], 6)[:n]
        rate[idle] = 0.0
    return rng.poisson(rate).astype(float)


def series(kind: str, count: int = 40, seed: int = 0, weeks: int = WEEKS) -> list[np.ndarray]:
    """`count` seeded series of one kind."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    flat = rng.permutation(count) < round(PARAMS[kind]["flat"] * count)
    shift, outlier = (rng.permutation(count) < round(count / 3) for _ in range(2))
    return [one_series(rng, kind, weeks, flat[i], shift[i], outlier[i]) for i in range(count)]


def frame(kind: str | None = None, count: int = 40, seed: int = 0, weeks: int = WEEKS) -> pd.DataFrame:
    """(series_id, hour, value): `count` series per kind ("provisioned/0", ..), both kinds unless one is named."""
    hours = pd.date_range(START, periods=weeks * SEASON, freq="h")
    parts = [
        pd.DataFrame({"series_id": f"{k}/{i}", "hour": hours, "value": y})
        for k in ([kind] if kind else KINDS)
        for i, y in enumerate(series(k, count, seed, weeks))
    ]
    return pd.concat(parts, ignore_index=True)
