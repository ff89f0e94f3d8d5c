"""`redset-dbt`: dbt for the Spark target with Spark 4's default ANSI mode kept.

dbt-spark 1.11 writes spark.sql.ansi.enabled=false into its credentials' server_side_parameters,
and its session method re-applies them to the SparkSession before every statement, so a profile
cannot turn ANSI back on. keep_ansi_mode() takes that one override out (a value set in profiles.yml
still wins); Dagster runs dbt through this entry point when REDSET_ENGINE=spark (warehouse/dbt_assets.py), and
tests/test_spark_engine.py builds every model with it and asserts the session runs with ANSI on.
"""

from __future__ import annotations

ANSI = "spark.sql.ansi.enabled"


def keep_ansi_mode() -> None:
    """Patch dbt-spark's credentials so they no longer force ANSI mode off (idempotent)."""
    from dbt.adapters.spark.connections import SparkCredentials

    forced = SparkCredentials.__post_init__
    if getattr(forced, "keeps_ansi", False):
        return

    def post_init(self) -> None:
        asked = dict(self.server_side_parameters or {})
        forced(self)
        if ANSI not in asked:  # only dbt-spark's own override is taken out
            self.server_side_parameters.pop(ANSI, None)

    post_init.keeps_ansi = True  # type: ignore[attr-defined]
    SparkCredentials.__post_init__ = post_init


def main() -> None:
    """dbt's own command line, with ANSI mode kept."""
    try:
        keep_ansi_mode()
    except ModuleNotFoundError as exc:
        raise SystemExit(f"redset-dbt: {exc.name} is missing: the `spark` extra has it (`pip install -e '.[spark]'`)")
    from dbt.cli.main import cli

    cli()


if __name__ == "__main__":
    main()
