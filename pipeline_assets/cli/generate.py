"""`redset generate`: seeded synthetic Redset rows in a Parquet file."""

from __future__ import annotations

import argparse
from datetime import date

from pipeline_assets import settings


def cmd_generate(args: argparse.Namespace) -> int:
    from pipeline_assets.source import generator

    table = generator.generate(
        rows=args.rows, seed=args.seed, deployment=args.deployment, start=args.start, days=args.days
    )
    generator.write(table, args.out)
    print(generator.summary(table, args.out))
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    gen = sub.add_parser("generate", parents=[common], help="write seeded synthetic Redset rows to a parquet file")
    gen.add_argument("--rows", type=int, default=1_000_000)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--out", default=str(settings.data_dir() / "synthetic.parquet"))
    gen.add_argument("--deployment", choices=["provisioned", "serverless", "both"], default="both")
    gen.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 1))
    gen.add_argument("--days", type=int, default=91)
    gen.set_defaults(func=cmd_generate)
