"""What live mode still owes the warehouse, kept on disk so a stop or crash loses no date.

Once a cycle's rows are durable, before their commit, their arrival dates are recorded
(raw/owed_dates.py), and the cycle moves them here: they are owed to the models that
run every cycle (`every_cycle`) and to the insights models (`insights`). A date leaves a set when a
dbt run of it succeeds. The file (`<data dir>/live/owed.json`, replaced atomically) is read when
live mode starts, so dates a stopped cycle had not built yet are built by the next live start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.durable import fsync_path


def live_dir() -> Path:
    return settings.data_dir() / "live"


@dataclass
class Owed:
    every_cycle: set[date] = field(default_factory=set)
    insights: set[date] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path | None = None) -> Owed:
        path = path or live_dir() / "owed.json"
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            return cls(*({date.fromisoformat(d) for d in data.get(k, [])} for k in ("every_cycle", "insights")))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not live mode's owed dates ({exc}); delete it to start afresh") from exc

    def add(self, days: set[date]) -> None:
        self.every_cycle |= days
        self.insights |= days

    def save(self, path: Path | None = None) -> None:
        path = path or live_dir() / "owed.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {k: sorted(d.isoformat() for d in getattr(self, k)) for k in ("every_cycle", "insights")}
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staged.write_text(json.dumps(payload))
        fsync_path(staged)
        os.replace(staged, path)
