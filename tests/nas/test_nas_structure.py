"""The package's shape: no import cycles, no module reading another module's privates."""

from __future__ import annotations

import ast
from pathlib import Path

import nas

PACKAGE = Path(nas.__file__).resolve().parent
MODULES = {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.glob("*.py"))}


def _runtime_imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    """Import statements that run (those under ``if TYPE_CHECKING:`` do not)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    return [n for n in imports if id(n) not in skip]


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, tree in MODULES.items():
        deps = set()
        for node in _runtime_imports(tree):
            targets = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                + [f"nas.{a.name}" for a in node.names if node.module == "nas"]
            )
            deps.update(t.split(".")[1] for t in targets if t.startswith("nas."))
        graph[name] = deps & set(MODULES) - {name, "__init__"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return [*stack[stack.index(d) :], d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles_between_nas_modules() -> None:
    graph = _import_graph()
    assert graph["_asha"] >= {"_hyperband", "_registry"}  # the graph sees real imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert _cycle({**graph, "_registry": graph["_registry"] | {"_hyperband"}}) is not None


def _defined_privates(tree: ast.Module) -> set[str]:
    """Private names a module defines: functions, classes, attributes it assigns."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def test_no_module_reads_another_modules_private_names() -> None:
    bad = []
    for name, tree in MODULES.items():
        mine = _defined_privates(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nas"):
                bad += [f"{name}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")
                        and node.module != "nas"]  # fmt: skip
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in mine
            ):
                bad.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "\n".join(bad)
