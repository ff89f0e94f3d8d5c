"""README.md and docs/*.md: every relative link resolves inside the repository, the lineage
diagrams are the code location's asset graph (scripts/lineage_diagram.py --check), and the
settings table names every variable the code reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())  # a diagram or a shell block holds no links
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_pages_are_there() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "troubleshooting.md", "settings.md", "redset-data.md", "lineage.md"} <= names
    assert all(links(p) for p in PAGES), "every page links somewhere (at least back to the README)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if ROOT not in resolved.parents and resolved != ROOT:
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, f"{page.name}: {broken}"


def test_the_lineage_diagrams_match_the_definitions() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lineage_diagram.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    readme = (ROOT / "README.md").read_text()
    for asset in ("redset_source", "raw_queries", "stg_queries", "clean_queries", "serving_snapshot"):
        assert asset in readme


# Set by a run for its own dbt invocation (the build window's dates), not by a user.
NOT_SETTINGS = {"REDSET_MIN_DATE", "REDSET_MAX_DATE"}


def test_the_settings_table_names_every_variable_the_code_reads() -> None:
    code = " ".join(p.read_text() for p in (ROOT / "pipeline_assets").rglob("*.py"))
    variables = set(re.findall(r"[\"'](REDSET_[A-Z0-9_]+|DAGSTER_POSTGRES_[A-Z]+|ALERT_WEBHOOK_URL)[\"']", code))
    table = (ROOT / "docs" / "settings.md").read_text()
    # A row may shorten its later names to their tail: `REDSET_SPARK_WORKERS`, `_WORKER_CORES`.
    missing = sorted(
        v for v in variables - NOT_SETTINGS if f"`{v}`" not in table and f"`_{v.split('_', 2)[2]}`" not in table
    )
    assert len(variables) > 40
    assert not missing, f"docs/settings.md has no row for {missing}"
