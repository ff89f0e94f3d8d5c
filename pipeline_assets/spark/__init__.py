"""Spark, the engine for data beyond one machine: a local standalone cluster (cluster.py) and
the Spark tables read and written without Spark (tables.py).

May import: runtime/ and the shared modules."""

from pipeline_assets.spark.cluster import SparkCluster, running, start, start_cluster, status, stop
from pipeline_assets.spark.launch import ClusterError
from pipeline_assets.spark.master import master_state, require_master

__all__ = [
    "ClusterError", "SparkCluster", "master_state", "require_master", "running", "start", "start_cluster", "status",
    "stop",
]  # fmt: skip
