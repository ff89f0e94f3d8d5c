"""`redset spark start|stop|status`: the local Spark standalone master and workers."""

from __future__ import annotations

import argparse
import sys


def cmd_spark(args: argparse.Namespace) -> int:
    from pipeline_assets.spark import cluster

    try:
        if args.action == "start":
            cluster.start(workers=args.workers)
        elif args.action == "stop":
            cluster.stop()
        else:
            return 0 if cluster.status() else 3  # 3: not running, as service managers say
    except cluster.ClusterError as exc:
        print(f"redset spark {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    spark = sub.add_parser("spark", parents=[common], help="run the local Spark standalone master and workers")
    spark.add_argument("action", choices=["start", "stop", "status"])
    spark.add_argument("--workers", type=int, default=None, help="workers to start (default 2 or REDSET_SPARK_WORKERS)")
    spark.set_defaults(func=cmd_spark)
