"""`redset demo`: broker, Dagster, replay, dashboards and docs, all on 127.0.0.1."""

from __future__ import annotations

import argparse
import os

from pipeline_assets.cli.args import speed


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline_assets import demo

    if args.insecure:
        os.environ["REDSET_INSECURE_HTTP"] = "1"  # the producer it starts inherits it
    return demo.run(source=args.source, rows=args.rows, speed=args.speed)


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo", parents=[common], help="broker, Dagster, replay, dashboards and docs, all on 127.0.0.1"
    )
    demo.add_argument("--source", default=None, help="Redset parquet path or URL (default: generated rows)")
    demo.add_argument("--rows", type=int, default=1_000_000)
    demo.add_argument("--speed", type=speed, default=6480.0)
    demo.add_argument("--insecure", action="store_true", help="allow a plain http:// SOURCE URL")
    demo.set_defaults(func=cmd_demo)
