"""The generated clusters: a few provisioned and/or serverless instances with their own attributes.

Each instance has its own share of the rows, time zone, repetition, abort rate, users,
databases and tables; how its load moves over the weeks is arrivals.py's business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline_assets.source.distributions import TYPE_MIX

ABORT_RATE = 0.01
CLUSTER_SIZES = np.array([2.0, 4.0, 4.0, 6.0, 8.0, 8.0, 10.0, 16.0, 32.0])
MAX_TABLE_ID = 400_000


@dataclass(frozen=True)
class Instances:
    """Per-instance attributes, one array element per instance."""

    deployment: np.ndarray  # index into schema.DEPLOYMENTS
    instance_id: np.ndarray
    cluster_size: np.ndarray  # NaN for serverless
    rows: np.ndarray
    utc_offset_h: np.ndarray
    unique_share: np.ndarray  # share of one-off (non-repeating) queries
    abort_rate: np.ndarray
    spill_prone: np.ndarray
    empty_ids_as_null: np.ndarray  # how "no tables" is stored: NULL or ''
    users: list[np.ndarray]
    databases: list[np.ndarray]
    tables: list[np.ndarray]  # the first `ingested` tables are ingest targets
    ingested: np.ndarray


def default_instances(rows: int) -> int:
    """A few instances (8-20), more for bigger runs, so per-instance dashboards mean something."""
    return int(np.clip(rows // 50_000, 8, 20))


def draw(rng: np.random.Generator, rows: int, n: int, deployment: str) -> Instances:
    """n instances sharing `rows`; with deployment 'both', half of them (rounded up) provisioned."""
    if deployment == "both" and n >= 2:
        dep = np.repeat([0, 1], [(n + 1) // 2, n // 2])
    else:
        dep = np.full(n, 0 if deployment in ("both", "provisioned") else 1)
    ids = np.zeros(n, np.int64)
    for d in (0, 1):  # ids are unique within a deployment, like Redset's 0-199
        mask = dep == d
        ids[mask] = np.sort(rng.choice(200, mask.sum(), replace=False))
    weights = rng.lognormal(0, 0.6, n)
    n_users = np.clip(rng.lognormal(3.0, 0.8, n).astype(int), 3, 300)
    n_dbs = rng.integers(1, 5, n)
    n_tables = np.clip(rng.lognormal(4.2, 0.6, n).astype(int), 12, 600)
    return Instances(
        deployment=dep,
        instance_id=ids,
        cluster_size=np.where(dep == 0, rng.choice(CLUSTER_SIZES, n), np.nan),
        rows=rng.multinomial(rows, weights / weights.sum()),
        utc_offset_h=rng.choice([-8, -5, -4, 0, 1, 2, 8, 9], n),
        unique_share=rng.uniform(0.05, 0.40, n),
        abort_rate=rng.uniform(0.6, 1.4, n) * ABORT_RATE / (1 - TYPE_MIX["cached"]),
        spill_prone=rng.random(n) < 0.3,
        empty_ids_as_null=rng.random(n) < 0.5,
        users=[100 + rng.choice(5_000, k, replace=False) for k in n_users],
        databases=[rng.choice(64, k, replace=False) for k in n_dbs],
        tables=[1 + rng.choice(MAX_TABLE_ID, k, replace=False) for k in n_tables],
        ingested=np.maximum(2, (n_tables * rng.uniform(0.2, 0.4, n)).astype(int)),
    )
