"""The program's modules import in one direction: no import cycles in components/ (TYPE_CHECKING imports count,
since a cycle hidden behind them still ties the two modules together for every reader and type checker)."""
from __future__ import annotations

import ast

from tests.factories import ROOT

PACKAGE = ROOT / "components"


def local_imports(module: str) -> set[str]:
    """The components.* modules `module` imports, relative or absolute, anywhere in the file."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 0 and node.module and node.module.startswith("components."):
                found.add(node.module.split(".")[1])
    return found


def test_components_have_no_import_cycles():
    graph = {path.stem: local_imports(path.stem) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in trail:
                cycles.append(trail[trail.index(target):] + [target])
            elif target in graph:
                visit(target, [*trail, target])

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
