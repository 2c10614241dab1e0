"""Import cycles among the project's modules, function-level imports included (they are imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app.py", "fhir_server", "auth", "mappers", "rules", "predmp")


def _modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in [ROOT / top] if top.endswith(".py") else sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.add(submodule if submodule in modules else module)
    return {target for target in targets if target in modules and target != name}


def cycles() -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for name in graph:
        if name not in index:
            visit(name)
    return found


def test_no_module_of_the_project_stands_in_an_import_cycle():
    assert [sorted(c) for c in cycles()] == []


def test_a_lower_floor_never_imports_a_higher_one():
    """The store and the search ground floor know nothing of the API, auth, jobs or feeds."""
    modules = _modules()
    higher = ("fhir_server.api", "fhir_server.searching", "fhir_server.bundles", "fhir_server.write", "auth",
              "mappers", "rules", "app", "fhir_server.outbox", "fhir_server.subscriptions", "fhir_server.export")
    for floor in ("fhir_server.search", "fhir_server.store"):
        for name, path in modules.items():
            if name == floor or name.startswith(floor + "."):
                wrong = {t for t in _imports(name, path, modules) if t.startswith(higher)}
                assert wrong == set(), f"{name} imports {sorted(wrong)}"
