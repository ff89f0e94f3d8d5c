"""`redset produce`: replay a Redset file into Kafka in arrival order."""

from __future__ import annotations

import argparse
import os
import sys

from pipeline_assets import settings
from pipeline_assets.cli.args import speed


def cmd_produce(args: argparse.Namespace) -> int:
    from pipeline_assets.kafka import producer
    from pipeline_assets.source.conform import SchemaError
    from pipeline_assets.source.fetch import UnsafeSource

    if args.insecure:
        os.environ["REDSET_INSECURE_HTTP"] = "1"
    try:
        stats = producer.produce(
            source=args.source,
            topic=args.topic,
            batch_size=args.batch_size,
            speed=args.speed,
            limit=args.limit,
            partitions=args.partitions,
            full_speed_hours=args.full_speed_hours,
        )
    except (producer.ProduceError, SchemaError, FileNotFoundError, UnsafeSource) as exc:
        print(f"redset produce: {exc}", file=sys.stderr)
        return 1
    return 0 if stats.errors == 0 else 1


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    prod = sub.add_parser("produce", parents=[common], help="replay a Redset file into Kafka in arrival order")
    prod.add_argument("--source", required=True, help="parquet path or https URL of Redset or generated data")
    prod.add_argument("--topic", default=settings.topic())
    prod.add_argument("--batch-size", type=int, default=10_000)
    prod.add_argument("--speed", type=speed, default=None, help="time-scale factor, or 'max' (default)")
    prod.add_argument("--limit", type=int, default=None)
    prod.add_argument("--partitions", type=int, default=3)
    prod.add_argument(
        "--full-speed-hours", type=float, default=0.0, help="replay the first H hours of data without pacing"
    )
    prod.add_argument("--insecure", action="store_true", help="allow a plain http:// SOURCE URL")
    prod.set_defaults(func=cmd_produce)
