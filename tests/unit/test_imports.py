"""The import graph of harness: no cycles between modules, no package importing back up into one
that imports it, and the report downstream of analysis.

The graph is read from the source with `ast` (module-level and function-level imports, relative
imports resolved), so a lazy import inside a function cannot hide a cycle.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "harness"


def _modules() -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is a package __init__)} for every module under harness/."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _absolute(module: str | None, level: int, importer: str, is_pkg: bool) -> str:
    """The absolute name `from <level dots><module> import ...` refers to inside `importer`."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_pkg else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _known(name: str, modules: dict) -> str | None:
    """The longest prefix of `name` that is a harness module (None outside harness)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, importer: str, is_pkg: bool, modules: dict) -> list[str]:
    """The harness modules one import statement loads (`from pkg import mod` names the submodule)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = _absolute(node.module, node.level, importer, is_pkg)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    else:
        return []
    return [t for t in (_known(n, modules) for n in names) if t and t != importer]


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {imported harness module: line of the first import}} over every import statement."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, (path, is_pkg) in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _targets(node, name, is_pkg, modules):
                edges.setdefault(target, getattr(node, "lineno", 0))
        graph[name] = edges
    return graph


def unit_of(module: str) -> str:
    """The dependency unit a module belongs to: its subpackage (harness.report, harness.probes, ...)
    or, for a module directly in harness/, the module itself."""
    return ".".join(module.split(".")[:2])


def collapse(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, str]]:
    """The graph between units: {unit: {imported unit: 'module:line -> module' of one such import}}."""
    out: dict[str, dict[str, str]] = {}
    for module, edges in graph.items():
        src = unit_of(module)
        out.setdefault(src, {})
        for target, line in edges.items():
            dst = unit_of(target)
            if dst != src:
                out[src].setdefault(dst, f"{module}:{line} -> {target}")
    return out


def cycles(graph: dict[str, dict]) -> list[list[str]]:
    """One cycle (a closed path of nodes) per strongly connected component with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_closed_path(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _closed_path(graph: dict[str, dict], component: set[str]) -> list[str]:
    """A cycle through the component's first node, found by breadth-first search back to it."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, {})):
            if w == start:
                return [*paths[v], start]
            if w in component and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return sorted(component)


def _describe(path: list[str], graph: dict[str, dict]) -> str:
    hops = [f"{a} -> {b} ({graph[a][b]})" for a, b in itertools.pairwise(path)]
    return " | ".join(hops)


def test_the_graph_sees_function_level_and_relative_imports():
    """The walker resolves relative imports and counts imports inside functions."""
    modules = {"harness": None, "harness.a": None, "harness.pkg": None, "harness.pkg.b": None}
    lazy = ast.parse("def f():\n    from ..a import x\n    from . import b\n")
    targets = [t for node in ast.walk(lazy) for t in _targets(node, "harness.pkg.c", False, modules)]
    assert targets == ["harness.a", "harness.pkg.b"]


def test_cycle_finder_names_the_cycle():
    """A two-module cycle is reported as a closed path; an acyclic graph gives none."""
    assert cycles({"a": {"b": 1}, "b": {"a": 2}, "c": {"a": 3}}) == [["a", "b", "a"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycle_between_modules():
    """No harness module imports, directly or through others, a module that imports it."""
    graph = import_graph()
    found = [_describe(c, graph) for c in cycles(graph)]
    assert not found, "import cycles between modules:\n" + "\n".join(found)


def test_no_package_imports_back_up():
    """Between subpackages and top-level modules the imports run one way (no cycle of units)."""
    units = collapse(import_graph())
    found = [_describe(c, units) for c in cycles(units)]
    assert not found, "units that import each other:\n" + "\n".join(found)


@pytest.mark.parametrize("lower", ["harness.analysis", "harness.stats", "harness.metrics", "harness.fmt"])
def test_the_report_is_downstream(lower):
    """analysis, stats, metrics and fmt never import harness.report (the report imports them)."""
    graph = import_graph()
    seen, todo = set(), [lower]
    while todo:
        m = todo.pop()
        for target in graph.get(m, {}):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert not [m for m in seen if unit_of(m) == "harness.report"]


def test_fmt_is_a_leaf():
    """harness.fmt imports nothing from harness: every layer can format values through it."""
    assert import_graph()["harness.fmt"] == {}
