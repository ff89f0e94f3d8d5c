"""The package's import structure: no circles between modules, and each folder imports only the
folders below it (the folder table in docs/layout.md). Imports inside functions count too: a lazy import
hides a circle from Python, not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline_assets"

# Bottom to top. A module may import its own layer's modules and any lower layer's. "" is the
# shared top-level modules (settings, schema, durable, alerts) and storage/, which settings imports.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("", "storage"),
    ("runtime",),
    ("source",),
    ("kafka", "s3"),
    ("raw",),
    ("raw.dump", "raw.landing"),
    ("spark",),
    ("warehouse",),
    ("serving", "serving.dashboard", "serving.dashboard.views", "insights"),
    ("monitoring",),
    ("live",),
    ("orchestration",),
    ("demo",),
    ("cli",),
)
SHARED_TOP_LEVEL_MAX = 5  # besides __init__.py


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (functions included)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            candidates = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:  # `from a.b import name` -> a.b
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and candidate != "pipeline_assets":
                targets.add(candidate)
    return targets


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(package)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def folder(module: str, path: Path) -> str:
    """'pipeline_assets.raw.dump.consume' -> 'raw.dump'; a top-level module -> ''."""
    parts = module.split(".")[1:]
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


def layer(folder_name: str) -> int:
    for rank, members in enumerate(LAYERS):
        if folder_name in members:
            return rank
    raise AssertionError(f"folder {folder_name or '(top level)'!r} is in no layer of LAYERS: add it")


def test_no_import_circles():
    assert circles(graph()) == []


def test_circle_finder_sees_a_lazy_import(tmp_path):
    pkg = tmp_path / "pipeline_assets"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "one.py").write_text("from pipeline_assets.a.two import f\n")
    (pkg / "a" / "two.py").write_text("def f():\n    from pipeline_assets.a import one\n")
    assert circles(graph(pkg)) == [["pipeline_assets.a.one", "pipeline_assets.a.two"]]


def test_no_folder_circles():
    """Folders of one layer may import each other, but never both ways round."""
    known = modules()
    folders: dict[str, set[str]] = {}
    for name, targets in graph().items():
        source = folder(name, known[name])
        folders.setdefault(source, set()).update(
            dest for t in targets if (dest := folder(t, known[t])) != source and not dest.startswith(source + ".")
        )
    assert circles(folders) == []


def test_folders_import_only_their_layer_or_below():
    known = modules()
    upward = []
    for name, targets in graph().items():
        source = folder(name, known[name])
        for target in targets:
            dest = folder(target, known[target])
            if layer(dest) > layer(source):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_module_is_over_300_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 300}
    assert long == {}


def test_few_shared_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= SHARED_TOP_LEVEL_MAX, top


def test_every_folder_says_what_it_may_import():
    for init in PACKAGE.rglob("__init__.py"):
        if init.parent == PACKAGE:
            continue
        doc = " ".join((ast.get_docstring(ast.parse(init.read_text())) or "").split())
        assert "May import" in doc or "never imported" in doc, init
