"""The tools package reads as layers: no module imports, even lazily inside a function, one that imports it back."""
from __future__ import annotations

import ast

from tests.factories import ROOT


def tools_imports() -> dict[str, set[str]]:
    """tools module -> the tools modules it imports anywhere in its body (top level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tools").glob("*.py")):
        name = f"tools.{path.stem}"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "tools":
                    found |= {f"tools.{alias.name}" for alias in node.names}
                elif node.module.startswith("tools."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("tools.")}
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle once, starting from its smallest module."""
    found: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in trail:
                cycle = trail[trail.index(target):] + [target]
                if min(cycle[:-1]) == cycle[0] and cycle not in found:
                    found.append(cycle)
            else:
                visit(target, [*trail, target])

    for module in sorted(graph):
        visit(module, [module])
    return found


PLAN_MODULES = {"tools.plan", "tools.plan_report", "tools.plan_model"}


def test_the_plan_and_its_reports_import_in_one_direction():
    """plan -> plan_report -> plan_model, and plan -> plan_model: the reports never import the plan back."""
    graph = tools_imports()
    assert [c for c in cycles(graph) if PLAN_MODULES & set(c)] == []
    assert "tools.plan" not in graph["tools.plan_report"] and "tools.plan_report" in graph["tools.plan"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
