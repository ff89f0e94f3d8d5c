"""Where the demo's servers listen, all on 127.0.0.1."""

from __future__ import annotations

import os

HOST = "127.0.0.1"
# REDSET_DEMO_*_PORT move a demo beside another one (`make screenshots` runs its own).
DAGSTER_PORT = int(os.environ.get("REDSET_DEMO_DAGSTER_PORT") or 3000)
DASHBOARD_PORT = int(os.environ.get("REDSET_DEMO_DASHBOARD_PORT") or 8501)
DOCS_PORT = int(os.environ.get("REDSET_DEMO_DOCS_PORT") or 8080)
# The asset graph from the raw Kafka dump to the dashboards' snapshot, every group expanded.
LINEAGE_PATH = "assets/serving_snapshot?view=lineage&lineageScope=upstream&lineageDepth=6"
