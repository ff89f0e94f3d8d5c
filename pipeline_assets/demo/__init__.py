"""`redset demo` (`make demo`): the whole pipeline on 127.0.0.1, stopped with Ctrl-C.

In order, reusing whatever already exists:

1. the local Kafka broker (left running on exit if it was running before);
2. 1M generated rows in data/synthetic.parquet, unless a source is given or the file exists;
3. the dbt docs site (generated once per run, served on :8080);
4. Dagster (`dagster dev`, :3000) with DAGSTER_HOME=.dagster_home and every sensor on, live mode's
   included (keep_live_mode_running; REDSET_DEMO_LIVE=0 leaves it off for the batch path), so the
   replay flows Kafka -> raw_queries -> dbt marts -> serving_snapshot by itself;
5. the replay producer: the first hours of data at full speed (screens fill in about two
   minutes), then time-scaled;
6. the forecast worker (insights/worker.py, nice 19, outside the live cycle): forecasts as soon as
   two weeks of data are in, then after each new hour, so forecasts show within minutes, not
   at the hourly asset's next run;
7. the dashboards (Streamlit, :8501).

Ctrl-C (or SIGTERM) stops exactly the processes this command started, newest first.

May import: any stage."""

from pipeline_assets.demo.addresses import HOST, LINEAGE_PATH
from pipeline_assets.demo.session import run

__all__ = ["HOST", "LINEAGE_PATH", "run"]
