"""The dashboards' filters (deployments, dates, one instance) as prepared-statement parameters,
and the WHERE fragments every filtering query of data.py uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pipeline_assets.schema import DEPLOYMENTS

# Open-ended bounds, so "all dates" is one SQL shape with the same parameters.
FIRST_DAY = date(1, 1, 1)
LAST_DAY = date(9999, 12, 31)

# WHERE fragments over the filter parameters; every query that filters uses these.
WHERE_DAY = "list_contains($deployments, deployment) AND arrival_date BETWEEN $start AND $end"
WHERE_INSTANCE = "deployment = $deployment AND instance_id = $instance_id"


@dataclass(frozen=True)
class Filters:
    """The sidebar's choice: deployments, and an inclusive date range (None = open)."""

    deployments: tuple[str, ...] = DEPLOYMENTS
    start: date | None = None
    end: date | None = None

    def params(self) -> dict[str, object]:
        return {
            "deployments": list(self.deployments),
            "start": self.start or FIRST_DAY,
            "end": self.end or LAST_DAY,
        }


@dataclass(frozen=True)
class Instance:
    deployment: str
    instance_id: int

    def params(self) -> dict[str, object]:
        return {"deployment": self.deployment, "instance_id": int(self.instance_id)}


def dates(f: Filters) -> dict[str, object]:
    p = f.params()
    return {"start": p["start"], "end": p["end"]}
