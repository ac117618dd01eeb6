"""The shape of the code, asserted: no import cycles between the project's modules, imports inside
functions only where a rule needs them (each says why), and area packages of one shape.

The layer contract (portal -> notifications -> contracts) is import-linter's, run by `make lint`."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contracts", "notifications", "portal")
AREAS = ("catalog", "tenancy", "pins", "consent", "ledger", "diffs", "evals", "bugs", "billing")
MAX_LATE_IMPORTS = 15


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(tree: ast.Module, modules: dict[str, Path]) -> tuple[set[str], list[ast.AST]]:
    """Project modules imported at module level, and import statements inside functions."""
    top_level, late = set(), []
    top_nodes = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        targets = [target for target in targets if target in modules]
        if not targets:
            continue
        if id(node) in top_nodes:
            top_level.update(targets)
        else:
            late.append(node)
    return top_level, late


def _graph() -> tuple[dict[str, set[str]], dict[str, list[ast.AST]]]:
    modules = _modules()
    graph, late = defaultdict(set), {}
    for name, path in modules.items():
        top_level, inner = _imports(ast.parse(path.read_text()), modules)
        graph[name] = {target for target in top_level if target != name}
        if inner:
            late[name] = inner
    return graph, late


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_level_import_cycles():
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_imports_inside_functions_are_few_and_each_says_why():
    _, late = _graph()
    modules = _modules()
    count = 0
    for name, nodes in late.items():
        lines = modules[name].read_text().splitlines()
        for node in nodes:
            count += 1
            line = lines[node.lineno - 1]
            documented = "noqa: PLC0415" in line and "--" in line.split("noqa: PLC0415", 1)[1]
            comment_above = lines[node.lineno - 2].strip().startswith("#")
            assert documented or comment_above, f"{name}:{node.lineno} imports late without saying why"
    assert count <= MAX_LATE_IMPORTS


def test_every_area_is_a_package_with_an_empty_init():
    for area in AREAS:
        init = ROOT / "contracts" / area / "__init__.py"
        assert init.exists(), area
        assert init.read_text().strip() == "", f"contracts/{area}/__init__.py holds code"
    assert (ROOT / "contracts" / "__init__.py").read_text().strip() == ""


def test_the_domain_never_names_the_web_layer_in_an_import():
    for package in ("contracts", "notifications"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                forbidden = ("portal",) if package == "notifications" else ("portal", "notifications")
                for name in names:
                    assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"
