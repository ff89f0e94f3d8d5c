"""When generated queries arrive: a load curve per instance, hour by hour, and times drawn from it.

Real instances differ (docs/redset-data.md, "Temporal shapes"): most show no weekend dip,
because much of the load is machine-driven; some are nearly flat, others bursty. So each
instance gets a rhythm:
- steady: dashboards and services on timers; flat, with a little jitter and slow drift;
- scheduled: batch jobs at fixed hours of the day, on every day of the week;
- office: people at work; a working-day curve in local time and quiet weekends;
- bursty: ad-hoc analysis and incidents; a low base with bursts of hours to days.
Machine rhythms (steady, scheduled) run on timers, so their hourly counts follow the curve
closely; human rhythms draw each query on its own (Poisson counts around the curve).
Ingest templates (copy, insert) run on fixed periods of their own whatever the rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from pipeline_assets import schema
from pipeline_assets.source.distributions import INGEST_KINDS

US_PER_HOUR = 3_600 * 1_000_000
US_PER_DAY = 24 * US_PER_HOUR
# Relative load by hour of day (local time) of people at work: quiet nights, a working-day plateau.
OFFICE_HOURS = 0.3 + 1.3 * np.exp(-(((np.arange(24) - 13.0) / 4.5) ** 2))


@dataclass(frozen=True)
class Rhythm:
    growth: float  # largest trend over the span, as a share of the mean load
    day_sigma: float  # day-to-day log-noise (busy and quiet days, AR(1))
    hour_sigma: float  # hour-to-hour log-noise
    weekend: tuple[float, float]  # range of the mean weekend load over the mean weekday load
    timer: bool  # machine-driven: hourly counts follow the curve without Poisson noise


RHYTHMS: dict[str, Rhythm] = {
    "steady": Rhythm(growth=0.2, day_sigma=0.08, hour_sigma=0.15, weekend=(1.0, 1.2), timer=True),
    "scheduled": Rhythm(growth=0.15, day_sigma=0.1, hour_sigma=0.35, weekend=(1.0, 1.25), timer=True),
    "office": Rhythm(growth=0.4, day_sigma=0.2, hour_sigma=0.15, weekend=(0.35, 0.75), timer=False),
    "bursty": Rhythm(growth=0.3, day_sigma=0.2, hour_sigma=0.3, weekend=(1.0, 1.2), timer=False),
}
RHYTHM_NAMES = tuple(RHYTHMS)
# Share of each rhythm among a deployment's instances: serverless is mostly flat or bursty
# (its real median autocorrelations are low), provisioned has more daily schedules.
RHYTHM_MIX = {
    "provisioned": np.array([0.25, 0.35, 0.15, 0.25]),
    "serverless": np.array([0.45, 0.10, 0.10, 0.35]),
}


@dataclass(frozen=True)
class LoadCurves:
    """Per instance, its rhythm and its expected load in every hour of the span (mean 1)."""

    rhythm: np.ndarray  # index into RHYTHM_NAMES
    load: np.ndarray  # (instances, hours)

    def at(self, inst: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """The load of each row's instance in the row's hour (t_us since the start)."""
        return self.load[inst, np.minimum(t_us // US_PER_HOUR, self.load.shape[1] - 1)]


def _rhythms(rng: np.random.Generator, deployment: np.ndarray) -> np.ndarray:
    """Each instance's rhythm: a deployment's instances cover its mix in proportion (a
    systematic sample of it), so even a few instances hold each kind about as often as Redset."""
    rhythm = np.zeros(deployment.size, np.int64)
    for code, name in enumerate(schema.DEPLOYMENTS):
        mine = np.flatnonzero(deployment == code)
        at = (np.arange(mine.size) + rng.random()) / max(mine.size, 1)
        kinds = np.searchsorted(np.cumsum(RHYTHM_MIX[name]), at, side="right")
        rhythm[mine] = rng.permutation(np.minimum(kinds, len(RHYTHMS) - 1))
    return rhythm


def _daily_profile(rng: np.random.Generator, name: str) -> np.ndarray:
    """Relative load by local hour of day."""
    if name == "steady":
        return np.ones(24)
    if name == "office":
        return OFFICE_HOURS
    if name == "bursty":
        return np.sqrt(OFFICE_HOURS)
    # scheduled: a base load plus jobs at a few fixed hours
    profile = np.full(24, rng.uniform(0.2, 0.6))
    jobs = rng.choice(24, rng.integers(2, 7), replace=False)
    profile[jobs] += rng.lognormal(0.0, 0.6, jobs.size)
    return profile


def _bursts(rng: np.random.Generator, hours: int) -> np.ndarray:
    """1 + the height of the bursts under way in each hour: about 3 a week, hours to days long."""
    level = np.zeros(hours + 1)
    n = 1 + rng.poisson(hours / 168 * 3)
    begin = rng.integers(0, hours, n)
    end = np.minimum(begin + np.clip(rng.lognormal(np.log(4), 0.8, n), 1, 72).astype(np.int64), hours)
    height = rng.lognormal(np.log(4), 0.6, n)
    np.add.at(level, begin, height)
    np.add.at(level, end, -height)
    return 1 + np.cumsum(level)[:hours]


def _ar1(rng: np.random.Generator, n: int, sigma: float, phi: float = 0.6) -> np.ndarray:
    """A stationary AR(1) series with standard deviation sigma."""
    shocks = rng.normal(0, sigma * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0, sigma)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def load_curves(
    rng: np.random.Generator, deployment: np.ndarray, utc_offset_h: np.ndarray, start: date, days: int
) -> LoadCurves:
    """Each instance's hourly load on the UTC grid of the span, from its rhythm in local time."""
    hours = days * 24
    rhythm = _rhythms(rng, deployment)
    load = np.empty((deployment.size, hours))
    for i, r in enumerate(rhythm):
        name = RHYTHM_NAMES[r]
        p = RHYTHMS[name]
        local = np.arange(hours) + utc_offset_h[i]
        local_day = local // 24 + 1  # 0 is the day before the start in local time
        weekend = np.isin((start.weekday() + local_day - 1) % 7, (5, 6))
        trend = 1 + rng.uniform(-p.growth, p.growth) * (np.arange(hours) / hours * 2 - 1)
        curve = (
            _daily_profile(rng, name)[local % 24]
            * trend
            * np.exp(_ar1(rng, days + 2, p.day_sigma)[local_day] + rng.normal(0, p.hour_sigma, hours))
        )
        if name == "bursty":
            curve *= _bursts(rng, hours)
        # Scale weekends to the drawn weekend/weekday ratio exactly: otherwise where the bursts
        # and busy days happened to fall would decide it.
        ratio = rng.uniform(*p.weekend)
        if weekend.any() and (~weekend).any():
            curve[weekend] *= ratio * curve[~weekend].mean() / curve[weekend].mean()
        load[i] = curve / curve.mean()
    return LoadCurves(rhythm=rhythm, load=load)


def _hour_counts(rng: np.random.Generator, load: np.ndarray, n: int, timer: bool) -> np.ndarray:
    """How many of n queries arrive in each hour: on a timer, the expected count rounded
    (systematic sampling); otherwise independent arrivals (multinomial)."""
    share = load / load.sum()
    if not timer:
        return rng.multinomial(n, share)
    edges = np.floor(np.concatenate([[0.0], np.cumsum(share) * n]) + rng.random())
    return np.diff(edges).astype(np.int64)


def arrival_times(
    rng: np.random.Generator,
    curves: LoadCurves,
    row_inst: np.ndarray,
    kind: np.ndarray,
    row_template: np.ndarray,
) -> np.ndarray:
    """Microseconds since the start of each given row: ingest templates run on fixed periods,
    the other queries follow their instance's load curve."""
    hours = curves.load.shape[1]
    span = hours * US_PER_HOUR
    t = np.zeros(kind.size, np.int64)

    ingest = np.flatnonzero(np.isin(kind, INGEST_KINDS))
    if ingest.size:
        by_tpl = ingest[np.argsort(row_template[ingest], kind="stable")]
        ids, first, counts = np.unique(row_template[by_tpl], return_index=True, return_counts=True)
        rank = np.arange(by_tpl.size) - np.repeat(first, counts)
        period = span / counts
        phase = rng.random(ids.size) * period
        jitter = rng.uniform(0, 0.004, by_tpl.size) * np.repeat(period, counts)
        at = np.repeat(phase, counts) + rank * np.repeat(period, counts) + jitter
        t[by_tpl] = np.clip(at, 0, span - 1).astype(np.int64)

    other = np.flatnonzero(~np.isin(kind, INGEST_KINDS))
    owner = row_inst[other]
    hour = np.empty(other.size, np.int64)
    by_owner = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[by_owner], np.arange(curves.load.shape[0] + 1))
    for i in range(curves.load.shape[0]):
        mine = by_owner[bounds[i]:bounds[i + 1]]
        timer = RHYTHMS[RHYTHM_NAMES[curves.rhythm[i]]].timer
        counts = _hour_counts(rng, curves.load[i], mine.size, timer)
        hour[mine] = rng.permutation(np.repeat(np.arange(hours), counts))
    t[other] = hour * US_PER_HOUR + rng.integers(0, US_PER_HOUR, other.size)
    return t
