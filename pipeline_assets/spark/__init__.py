"""Spark, the engine for data beyond one machine: a local standalone cluster (cluster.py)."""

from pipeline_assets.spark.cluster import ClusterError, SparkCluster, running, start, start_cluster, status, stop

__all__ = ["ClusterError", "SparkCluster", "running", "start", "start_cluster", "status", "stop"]
