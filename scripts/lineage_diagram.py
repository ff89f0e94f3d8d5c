"""The lineage as Mermaid diagrams, made from the code location's asset graph, so the names can be read.

    .venv/bin/python scripts/lineage_diagram.py          # rewrite the diagrams in README.md and docs/lineage.md
    .venv/bin/python scripts/lineage_diagram.py --check  # exit 1 if either differs from the definitions

README.md gets one box per Dagster group listing its assets, with the edges between groups;
docs/lineage.md every asset and edge, grouped as in Dagster's UI. Each diagram sits between
`<!-- lineage:NAME -->` and `<!-- /lineage:NAME -->`. (Dagster's own lineage page abbreviates names
once the whole graph fits a screen, which made docs/lineage.png hard to read.)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"groups": ROOT / "README.md", "assets": ROOT / "docs" / "lineage.md"}
# Left to right as the data flows; a group not named here comes last.
GROUP_ORDER = ("source", "raw", "staging", "marts", "serving", "dashboards")

Graph = dict[str, tuple[str, tuple[str, ...]]]  # asset -> (group, parents)


def asset_graph() -> Graph:
    from pipeline_assets.orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    nodes = (graph.get(key) for key in graph.get_all_asset_keys())
    return {
        n.key.to_user_string(): (n.group_name, tuple(sorted(p.to_user_string() for p in n.parent_keys)))
        for n in nodes
    }


def _groups(graph: Graph) -> list[str]:
    present = {group for group, _ in graph.values()}
    return [g for g in GROUP_ORDER if g in present] + sorted(present - set(GROUP_ORDER))


def _depth(graph: Graph, asset: str) -> int:
    """The longest path from a root to `asset`: a group's members are listed upstream first."""
    parents = graph[asset][1]
    return 1 + max((_depth(graph, p) for p in parents), default=-1)


def _members(graph: Graph, group: str) -> list[str]:
    return sorted((a for a, (g, _) in graph.items() if g == group), key=lambda a: (_depth(graph, a), a))


def group_diagram(graph: Graph) -> str:
    """One box per group with its assets' names, and an edge where an asset reads another group's."""
    lines = ["```mermaid", "flowchart LR"]
    for group in _groups(graph):
        names = "<br/>".join(_members(graph, group))
        lines.append(f'  {group}["<b>{group}</b><br/>{names}"]')
    edges = sorted(
        {(graph[p][0], g) for _, (g, parents) in graph.items() for p in parents if graph[p][0] != g},
        key=lambda e: (_groups(graph).index(e[0]), _groups(graph).index(e[1])),
    )
    lines += [f"  {a} --> {b}" for a, b in edges]
    return "\n".join(lines + ["```"])


def asset_diagram(graph: Graph) -> str:
    """Every asset in a box of its group, every edge."""
    lines = ["```mermaid", "flowchart LR"]
    for group in _groups(graph):
        lines.append(f'  subgraph group_{group}["{group}"]')
        lines += [f"    {asset}" for asset in _members(graph, group)]
        lines.append("  end")
    lines += [f"  {p} --> {asset}" for asset, (_, parents) in sorted(graph.items()) for p in parents]
    return "\n".join(lines + ["```"])


def replace_block(text: str, name: str, diagram: str) -> str:
    pattern = re.compile(rf"(<!-- lineage:{name} -->\n)(?:.*?\n)?(<!-- /lineage:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- lineage:{name} --> ... <!-- /lineage:{name} --> block in {TARGETS[name]}")
    return pattern.sub(lambda m: m.group(1) + diagram + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a diagram differs from the definitions")
    args = parser.parse_args(argv)
    graph = asset_graph()
    stale = []
    for name, make in (("groups", group_diagram), ("assets", asset_diagram)):
        path = TARGETS[name]
        text = path.read_text()
        new = replace_block(text, name, make(graph))
        if new != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"lineage diagrams differ from the definitions in {', '.join(stale)}: "
              "run .venv/bin/python scripts/lineage_diagram.py", file=sys.stderr)  # fmt: skip
        return 1
    print(f"{len(graph)} assets; {'rewrote ' + ', '.join(stale) if stale else 'diagrams up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
