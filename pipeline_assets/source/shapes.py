"""Per-instance temporal shapes of a query log, measured as docs/redset-data.md measures them.

Each instance's hourly query counts on a dense grid from its first to its last hour with data
(empty hours count as 0); then per instance:
- weekend_ratio: mean count on Saturday and Sunday hours (UTC) over the mean on weekday hours;
- acf24, acf168: Pearson correlation of the series with itself shifted by 24 or 168 hours;
- cv: standard deviation over mean of the hourly counts;
- empty_share: share of hours with no query.
`medians` takes the median of each over a deployment's instances. Pure numpy, no I/O, so it
measures generated rows, a Redset file or any (deployment, instance, timestamp) columns alike.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

US_PER_HOUR = 3_600 * 1_000_000
MEASURES = ("weekend_ratio", "acf24", "acf168", "cv", "empty_share")
_EPOCH_THURSDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def hourly_counts(timestamps_us: np.ndarray) -> tuple[int, np.ndarray]:
    """(first hour since the epoch, query count of every hour from the first to the last)."""
    hours = np.asarray(timestamps_us, np.int64) // US_PER_HOUR
    first = int(hours.min())
    return first, np.bincount(hours - first)


def _acf(x: np.ndarray, lag: int) -> float:
    if x.size <= lag + 1:
        return float("nan")
    a, b = x[:-lag], x[lag:]
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def series_shapes(first_hour: int, counts: np.ndarray) -> dict[str, float]:
    """The measures of one instance's dense hourly series (see the module doc)."""
    counts = counts.astype(np.float64)
    weekday = ((first_hour + np.arange(counts.size)) // 24 + _EPOCH_THURSDAY) % 7
    weekend = weekday >= 5
    has_both = weekend.any() and (~weekend).any() and counts[~weekend].mean() > 0
    mean = counts.mean()
    return {
        "weekend_ratio": float(counts[weekend].mean() / counts[~weekend].mean()) if has_both else float("nan"),
        "acf24": _acf(counts, 24),
        "acf168": _acf(counts, 168),
        "cv": float(counts.std() / mean) if mean > 0 else float("nan"),
        "empty_share": float((counts == 0).mean()),
    }


def instance_shapes(table: pa.Table) -> dict[tuple[str, int], dict[str, float]]:
    """Measures per (deployment, instance_id) of a table with those columns and arrival_timestamp."""
    deployment = np.asarray(table["deployment"].to_numpy(zero_copy_only=False), dtype=object)
    instance = table["instance_id"].to_numpy()
    ts = table["arrival_timestamp"].cast(pa.timestamp("us")).cast(pa.int64()).to_numpy()
    deployments, dep_code = np.unique(deployment, return_inverse=True)
    key = dep_code.astype(np.int64) * (int(instance.max()) + 1) + instance if ts.size else dep_code
    order = np.argsort(key, kind="stable")
    keys, starts = np.unique(key[order], return_index=True)
    out = {}
    for k, lo, hi in zip(keys, starts, [*starts[1:], order.size]):
        rows = order[lo:hi]
        name = (str(deployments[dep_code[rows[0]]]), int(instance[rows[0]]))
        out[name] = series_shapes(*hourly_counts(ts[rows]))
    return out


def medians(shapes: dict[tuple[str, int], dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median of each measure over each deployment's instances (NaNs, e.g. flat series, left out)."""
    out: dict[str, dict[str, float]] = {}
    for deployment in sorted({d for d, _ in shapes}):
        rows = [s for (d, _), s in shapes.items() if d == deployment]
        values = {m: [r[m] for r in rows if not np.isnan(r[m])] for m in MEASURES}
        out[deployment] = {m: float(np.median(v)) if v else float("nan") for m, v in values.items()}
    return out
