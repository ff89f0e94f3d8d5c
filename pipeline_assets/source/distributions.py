"""What each generated row is: its query type, execution-time bucket and scan-size bucket.

The buckets are assigned by rank over latent scores, so their shares match the target exactly
while slow types (ctas, copy) still land in slow buckets. Provisioned rows follow the paper's
shares; serverless rows scan and run longer (docs/redset-data.md: about 9x the MB and 4x the
execution time per query on average), so they get heavier shares of the same buckets.
"""

from __future__ import annotations

import numpy as np

from pipeline_assets import schema

# Query-type mix of all rows (the paper: select about 49%, ctas about 2%). "cached" is the
# cached part of "other": it becomes query_type 'other' with was_cached set.
TYPE_MIX: dict[str, float] = {
    "select": 0.49,
    "insert": 0.14,
    "copy": 0.06,
    "update": 0.05,
    "delete": 0.04,
    "ctas": 0.02,
    "unload": 0.005,
    "vacuum": 0.003,
    "analyze": 0.012,
    "other": 0.09,
    "cached": 0.10,
}
KINDS = tuple(TYPE_MIX)
KIND = {name: code for code, name in enumerate(KINDS)}
CACHED = KIND["cached"]
INGEST_KINDS = tuple(KIND[t] for t in schema.INGEST_QUERY_TYPES)
# Shift of each kind's latent execution score, in standard deviations: ctas and copy are the
# heavy ones (ctas is about 2% of queries but 16% of load).
EXEC_SHIFT = {"ctas": 1.3, "copy": 0.9, "insert": 0.4, "vacuum": 1.5, "unload": 1.0, "analyze": 0.3}
SCAN_SHIFT = {"ctas": 1.0, "copy": 0.8, "unload": 0.8, "vacuum": 0.8, "other": -1.5}

# Execution time buckets (upper edges in ms) and the share of queries in each, per deployment:
# provisioned is the paper's; serverless moves weight to the slow buckets (mean about 4x).
EXEC_EDGES_MS = np.array([0, 10, 100, 1_000, 10_000, 60_000, 600_000, 3_600_000, 14_400_000])
EXEC_SHARES = {
    "provisioned": np.array([0.137, 0.483, 0.249, 0.099, 0.022, 0.0086, 0.0008, 0.00008]),
    "serverless": np.array([0.08, 0.3606, 0.30, 0.17, 0.05, 0.035, 0.004, 0.0004]),
}
# Scan size buckets (upper edges in MB) and the share of queries in each, per deployment:
# provisioned is the paper's; serverless scans more (mean about 9x).
SCAN_EDGES_MB = np.array([0, 1_024, 10_240, 102_400, 1_048_576, 8_388_608])
SCAN_SHARES = {
    "provisioned": np.array([0.75, 0.19, 0.041, 0.011, 0.0024]),
    "serverless": np.array([0.45, 0.30, 0.15, 0.07, 0.03]),
}
N_EXEC_BUCKETS = EXEC_EDGES_MS.size - 1
N_SCAN_BUCKETS = SCAN_EDGES_MB.size - 1


def row_kinds(rng: np.random.Generator, rows_per_instance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's kind (query type, or cached) and instance; each instance has its own mix."""
    mix = np.array(list(TYPE_MIX.values()))
    kinds, owners = [], []
    for i, n in enumerate(rows_per_instance):
        counts = rng.multinomial(n, rng.dirichlet(400 * mix))
        if counts[KIND["select"]] == 0:  # nothing to answer from the cache: plain 'other'
            counts[KIND["other"]] += counts[CACHED]
            counts[CACHED] = 0
        kinds.append(np.repeat(np.arange(len(KINDS)), counts))
        owners.append(np.full(n, i))
    return np.concatenate(kinds), np.concatenate(owners)


def _rank_buckets(score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Bucket b for the rows whose score ranks within the b-th slice of `counts`."""
    bucket = np.empty(score.size, np.int64)
    bucket[np.argsort(score, kind="stable")] = np.searchsorted(
        np.cumsum(counts), np.arange(score.size), side="right"
    )
    return bucket


def _bucket_counts(shares: np.ndarray, total: int, reserved_first: int, n: int) -> np.ndarray:
    """Split n rows over buckets so that, with `reserved_first` rows already in bucket 0,
    the bucket shares of `total` rows follow `shares`."""
    target = shares / shares.sum() * total
    target[0] = max(target[0] - reserved_first, 0.0)
    counts = np.floor(target / target.sum() * n).astype(np.int64)
    counts[np.argmax(counts)] += n - counts.sum()
    return counts


def buckets(rng: np.random.Generator, kind: np.ndarray, deployment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Execution and scan buckets of every row (index into EXEC_/SCAN_EDGES); `deployment`
    indexes schema.DEPLOYMENTS. Cached rows stay in bucket 0 (they run 1 ms and scan nothing)."""
    exec_shift = np.array([EXEC_SHIFT.get(k, 0.0) for k in KINDS])
    scan_shift = np.array([SCAN_SHIFT.get(k, 0.0) for k in KINDS])
    exec_b = np.zeros(kind.size, np.int64)
    scan_b = np.zeros(kind.size, np.int64)
    for code, name in enumerate(schema.DEPLOYMENTS):
        mine = deployment == code
        base = np.flatnonzero(mine & (kind != CACHED))
        if base.size == 0:
            continue
        z_exec = rng.standard_normal(base.size) + exec_shift[kind[base]]
        # Scans correlate with execution time, so big scans are mostly slow queries.
        z_scan = (0.6 * (z_exec - z_exec.mean()) / max(z_exec.std(), 1e-9)
                  + 0.8 * rng.standard_normal(base.size) + scan_shift[kind[base]])
        n_cached = int(mine.sum()) - base.size
        exec_b[base] = _rank_buckets(z_exec, _bucket_counts(EXEC_SHARES[name], mine.sum(), n_cached, base.size))
        scan_b[base] = _rank_buckets(z_scan, _bucket_counts(SCAN_SHARES[name], base.size, 0, base.size))
    return exec_b, scan_b
