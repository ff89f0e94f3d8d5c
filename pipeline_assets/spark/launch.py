"""How the cluster's daemons are launched: pyspark's own `spark-class` (its jars/ and bin/ are a Spark
distribution), an environment of our own, and the daemons' settings file."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
DAEMON_HEAP = "256m"  # the master and workers only schedule; executors get the worker memory

# Fixed ports only: a taken port fails the start instead of moving to the next one unnoticed.
# The master's REST submission server would take the fixed port 6066 in every cluster; unused here.
DEFAULTS_CONF = """\
spark.port.maxRetries 0
spark.master.rest.enabled false
spark.ui.showConsoleProgress false
"""


class ClusterError(RuntimeError):
    """The cluster cannot be started or stopped; the message says why and where to look."""


def spark_home() -> Path:
    """pyspark's install: its jars/ and bin/spark-class are a Spark distribution."""
    spec = importlib.util.find_spec("pyspark")  # without importing it (slow)
    if spec is None or not spec.submodule_search_locations:
        raise ClusterError("pyspark is not installed: the `spark` extra has it: `make install`, or `pip install -e '.[spark]'`")
    return Path(spec.submodule_search_locations[0])


def daemon_env(home: Path) -> dict[str, str]:
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise ClusterError("Spark needs Java 17+ (`java` on PATH or JAVA_HOME): `make java` installs it")
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(home / "conf"),  # ours only: no spark-env.sh or defaults from elsewhere
        "SPARK_LOCAL_IP": HOST,
        "SPARK_DAEMON_MEMORY": DAEMON_HEAP,
        "PYSPARK_PYTHON": sys.executable,  # Python UDFs in executors run in this venv
    }


def spark_class(main_class: str, *args: str) -> list[str]:
    return [str(spark_home() / "bin" / "spark-class"), main_class, *args]
