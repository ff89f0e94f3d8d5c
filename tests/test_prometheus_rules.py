"""docker/prometheus and docker/grafana: promtool accepts the config and the rules, the alerts
fire on hand-written series (alerts_test.yml), and the dashboard queries only our metrics."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from prometheus_support import ROOT, tool

PROMETHEUS_DIR = ROOT / "docker" / "prometheus"
GRAFANA_DIR = ROOT / "docker" / "grafana"


def promtool(*args: str) -> str:
    result = subprocess.run([str(tool("promtool")), *args], capture_output=True, text=True, cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def test_promtool_checks_the_config_and_the_rules() -> None:
    out = promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 5 rules found" in out, out  # check config also checks the rule files it names
    promtool("check", "rules", "alerts.yml")


def test_alert_rules_on_hand_written_series() -> None:
    out = promtool("test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out, out


def test_promtool_test_fails_when_an_alert_is_wrong(tmp_path) -> None:
    """The rules test can fail: the same series with a burst alert expected where none fires."""
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    burst = next(t for t in tests["tests"] if t["alert_rule_test"][0]["alertname"] == "RedsetDeadLetterBurst")
    burst["alert_rule_test"][0]["exp_alerts"][0]["exp_labels"]["topic"] = "trickle"
    (tmp_path / "alerts.yml").write_text((PROMETHEUS_DIR / "alerts.yml").read_text())
    (tmp_path / "wrong_test.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run([str(tool("promtool")), "test", "rules", "wrong_test.yml"], capture_output=True,
                            text=True, cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0 and "RedsetDeadLetterBurst" in result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted(p.relative_to(GRAFANA_DIR).as_posix() for p in GRAFANA_DIR.rglob("*.yml")))
def test_grafana_provisioning_is_yaml_for_the_dashboard_uid(path: str) -> None:
    config = yaml.safe_load((GRAFANA_DIR / path).read_text())
    assert config["apiVersion"] == 1
    if "datasources" in config:
        uids = {p["datasource"]["uid"] for p in json.loads((GRAFANA_DIR / "redset.json").read_text())["panels"]}
        assert uids == {config["datasources"][0]["uid"]}


def test_dashboard_panels_query_the_pipelines_metrics() -> None:
    dashboard = json.loads((GRAFANA_DIR / "redset.json").read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(set(titles)) == len(titles) and len({p["id"] for p in dashboard["panels"]}) == len(titles)
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert set(re.findall(r"\bredset_[a-z_]+", target["expr"])), target["expr"]
