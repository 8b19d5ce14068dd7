"""Imports point down the stack that docs/layers.md states, with no cycles between modules.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``, because each
is a dependency a reader (and a refactoring) has to know about.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("speech", "ner", "translate", "eval", "streaming", "recipes")
STREAMING_LAYERS = {"streaming": 0, "streaming.batch": 1, "streaming.live": 1,
                    "streaming.cli": 2}


def _stack() -> list[str]:
    """The package stack from docs/layers.md: the line of backquoted names joined by →."""
    text = (REPO / "docs" / "layers.md").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("`speech` →"))
    return re.findall(r"`([a-z]+)`", line)


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> Iterator[tuple[str, str, str]]:
    """(importing module, imported module, file:line) for every import of a project module."""
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            module = _module(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                    names += [f"{node.module}.{alias.name}" for alias in node.names]
                where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
                for name in names:
                    if name.split(".")[0] in PACKAGES:
                        yield module, _known(name), where


_MODULES = {_module(path) for package in PACKAGES for path in (REPO / package).rglob("*.py")}


def _known(name: str) -> str:
    """The longest project module that ``name`` (a module or a module's attribute) names."""
    while name not in _MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _streaming_layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module in STREAMING_LAYERS else "streaming"


def test_the_stack_names_every_package() -> None:
    assert sorted(_stack()) == sorted(PACKAGES)


def test_imports_point_down_the_stack() -> None:
    rank = {package: index for index, package in enumerate(_stack())}
    upward = [f"{where}: {source} imports {target}" for source, target, where in _imports()
              if rank[target.split(".")[0]] > rank[source.split(".")[0]]]
    assert upward == []


def test_batch_and_live_stay_apart_below_the_command() -> None:
    wrong = []
    for source, target, where in _imports():
        if not (source.startswith("streaming") and target.startswith("streaming")):
            continue
        mine, theirs = _streaming_layer(source), _streaming_layer(target)
        if mine == theirs:
            continue
        if STREAMING_LAYERS[theirs] >= STREAMING_LAYERS[mine]:
            wrong.append(f"{where}: {source} imports {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for source, target, _ in _imports():
        if source != target:
            graph.setdefault(source, set()).add(target)
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert cycles == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
