"""`redset live`: live mode without Dagster's daemon, reporting to the instance in DAGSTER_HOME."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def cmd_live(args: argparse.Namespace) -> int:
    import threading

    import dagster as dg

    from pipeline_assets.live.loop import LiveLoop
    from pipeline_assets.live.report import report_runless
    from pipeline_assets.live.stopping import stop_on_signals
    from pipeline_assets.live.switch import LiveModeBusy

    log = logging.getLogger("pipeline_assets.live")
    log.setLevel(logging.INFO)
    if not os.environ.get("DAGSTER_HOME"):
        print("redset live: set DAGSTER_HOME to the Dagster instance to report to (e.g. `make dagster-home`, "
              "then DAGSTER_HOME=$PWD/.dagster_home)", file=sys.stderr)  # fmt: skip
        return 1
    stop = threading.Event()
    with dg.DagsterInstance.get() as instance, stop_on_signals(stop, log.info):
        loop = LiveLoop(instance, stop, where="redset live", log=log, max_cycles=args.max_cycles,
                        new_generation=args.new_generation)  # fmt: skip
        try:
            for events in loop.cycles():
                report_runless(instance, events)
        except LiveModeBusy as exc:
            print(f"redset live: {exc}", file=sys.stderr)
            return 1
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    live = sub.add_parser(
        "live", parents=[common], help="live mode: consume, build and publish in cycles until Ctrl-C or SIGTERM"
    )
    live.add_argument("--max-cycles", type=int, default=None, help="stop after this many cycles (default: never)")
    live.add_argument("--new-generation", action="store_true",
                      help="after a topic reset (the topic re-created, the broker wiped): start a new generation of "
                      "the raw zone instead of stopping, as raw_queries' new_generation does")  # fmt: skip
    live.set_defaults(func=cmd_live)
