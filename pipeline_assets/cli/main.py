"""The `redset` parser: each command group's module adds its subcommands."""

from __future__ import annotations

import argparse
import logging

from pipeline_assets import cli
from pipeline_assets.cli import dead_letters, demo, forecast, generate, kafka, live, metrics, produce, s3, spark
from pipeline_assets.kafka.config import LIBRDKAFKA_LOG

# In `redset --help` order.
COMMAND_GROUPS = (generate, kafka, s3, spark, produce, demo, live, metrics, dead_letters, forecast)


def build_parser() -> argparse.ArgumentParser:
    verbose_help = "show librdkafka's own log lines too"
    parser = argparse.ArgumentParser(prog="redset", description=cli.__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # Also after the subcommand (`redset produce -v`); SUPPRESS keeps it from resetting `redset -v produce`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(sub, common)
    return parser


def _configure_logging(verbose: bool) -> None:
    """librdkafka logs every refused connection; without -v the project's own error says it once."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s")
    LIBRDKAFKA_LOG.setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)  # above any level it logs at


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
