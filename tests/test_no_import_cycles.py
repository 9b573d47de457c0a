"""No import cycle among the project's modules (modules/, serving/, components/, pipelines/).

An edge ``a -> b`` is an import of project module ``b`` by module ``a``, read from the source with ``ast``:
``import x.y`` and ``from x import y`` (an edge to ``x.y`` when that is a module, else to ``x``); relative imports
resolved. Module-level imports (those that run when the module is imported, including inside ``if`` / ``try``
blocks; ``if TYPE_CHECKING:`` blocks are left out, they never run) must form no cycle; neither may all imports,
those inside functions and TYPE_CHECKING blocks included (a deferred import is no way around a layering cycle).
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("modules", "components", "serving", "pipelines")


def _modules() -> dict[str, Path]:
    out = {}
    for root in ROOTS:
        for p in sorted((REPO / root).rglob("*.py")):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import nodes that run at import time: not inside a def/lambda/class body's methods or TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:  # ``import a.b.c`` of a non-module attribute: its nearest module
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph(module_level_only: bool = True) -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        nodes = (_module_level_imports(tree) if module_level_only
                 else [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))])
        graph[name] = {t for node in nodes for t in _targets(node, name, is_package, known) if t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_module_level_imports_only() -> None:
    tree = ast.parse("import os\nfrom modules.search import engine\nif TYPE_CHECKING:\n    from modules import bundle\n"
                     "def f():\n    from modules import config\n")
    known = {"modules", "modules.search", "modules.search.engine", "modules.bundle", "modules.config"}
    targets = {t for n in _module_level_imports(tree) for t in _targets(n, "modules.x", False, known)}
    assert targets == {"modules.search.engine"}


def test_no_import_cycle_among_project_modules() -> None:
    graph = import_graph()
    assert len(graph) > 60 and "modules.search.engine" in graph
    assert not find_cycles(graph), f"import cycles (module-level imports): {find_cycles(graph)}"


def test_no_import_cycle_counting_function_level_imports_too() -> None:
    graph = import_graph(module_level_only=False)
    assert not find_cycles(graph), f"import cycles (all imports): {find_cycles(graph)}"
