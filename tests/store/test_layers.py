"""The backends compile the search IR they are handed: they never look a search parameter up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORE = Path(__file__).resolve().parents[2] / "fhir_server" / "store"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function, as written (relative dots kept)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" if node.module else base + alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(STORE.glob("*.py")), ids=lambda p: p.name)
def test_backends_never_consult_the_registry(path: Path) -> None:
    assert not [m for m in imported_modules(path) if m.rsplit(".", 1)[-1] == "registry" or ".registry." in m]
