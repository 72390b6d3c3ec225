"""The seams hold: no import cycle, the pipeline never reaches into the server or a runtime,
and loopback addresses live only in the local target and the front door."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shiplane"
LOOPBACK_ALLOWED = (
    "targets/local.py",
    "targets/processes.py",
    "frontdoor/",
    "config/frontdoor.py",  # the default listen address
    "onboard/probe.py",  # init asks a throwaway copy of the app for its health path
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shiplane"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("shiplane"))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, set()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules_or_packages() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) & set(modules) for name, path in modules.items()}
    assert _cycles(graph) == []

    def package(name: str) -> str:
        return ".".join(name.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        packages.setdefault(package(name), set()).update(
            package(t) for t in targets if package(t) != package(name)
        )
    assert _cycles(packages) == []


def test_pipeline_talks_to_the_target_only() -> None:
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("shiplane.pipeline"):
            bad = {
                i
                for i in _imports(path, modules)
                if i.startswith(
                    (
                        "shiplane.server",
                        "shiplane.targets.processes",
                        "shiplane.targets.local",
                        "shiplane.frontdoor",
                    )
                )
            }
            assert not bad, f"{path.name} imports {bad}"


def test_loopback_only_in_the_local_target_and_the_front_door() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "127.0.0.1" in path.read_text()
        and not str(path.relative_to(PACKAGE)).startswith(LOOPBACK_ALLOWED)
    ]
    assert offenders == []
