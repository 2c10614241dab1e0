"""Required bindings of R4: a coded element whose binding is ``required`` holds a code of its value set.

fhir.resources checks structure and datatypes, not codes. The table ``required-bindings.json`` is
generated from R4's own definitions by ``tools/required_bindings.py`` (which says from where, and how to
re-run it); it is compiled here once into a tree per type, pruned to the paths that lead to a binding,
so checking a resource is one walk over the few elements that can hold a bound code.

Extensions are not walked (their value is not bound by the element they extend). Value sets that the
definitions cannot enumerate (defined by a filter, or drawing on a large external code system such as
MIME types or currencies) are not in the table, so not checked.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from .errors import FHIRError, issue

_TABLE = Path(__file__).with_name("required-bindings.json")
# Listing the allowed codes helps the sender fix the value; past this many, the value set's url says it.
_LISTED = 12


class ValueSet:
    """The codes of one value set, by system and all together."""

    __slots__ = ("url", "codes", "pairs")

    def __init__(self, url: str, systems: dict[str, list[str]]):
        self.url = url
        self.codes = frozenset(c for codes in systems.values() for c in codes)
        self.pairs = frozenset((s, c) for s, codes in systems.items() for c in codes)

    def has(self, system: Any, code: str) -> bool:
        """Is ``code`` (of ``system``, when one is given) in the value set?"""
        if isinstance(system, str):
            return (system, code) in self.pairs
        return code in self.codes

    def describe(self) -> str:
        if len(self.codes) > _LISTED:
            return self.url
        return f"{self.url} ({', '.join(sorted(self.codes))})"


class Node:
    """One element of a type: the value set it is bound to (if any), and the elements under it to walk."""

    __slots__ = ("kind", "value_set", "children", "branches", "any_resource")

    def __init__(self) -> None:
        self.kind: str | None = None
        self.value_set: ValueSet | None = None
        self.children: dict[str, Node] = {}
        # The trees walked under this element: its own children, a datatype's, or those of the element
        # it is defined as (Questionnaire.item.item is Questionnaire.item). Set once the table is compiled.
        self.branches: tuple[dict[str, Node], ...] = ()
        self.any_resource = False


@cache
def trees() -> dict[str, dict[str, Node]]:
    """Type name -> its element tree (top elements by JSON name), compiled from the generated table."""
    table = json.loads(_TABLE.read_text())
    value_sets = {url: ValueSet(url, systems) for url, systems in table["valueSets"].items()}
    roots: dict[str, dict[str, Node]] = {name: {} for name in table["types"]}
    nodes: dict[tuple[str, str], Node] = {}
    for name, elements in table["types"].items():
        for path, entry in elements.items():
            node = _node(roots[name], nodes, name, path)
            node.kind = entry.get("type")
            if "valueSet" in entry:
                node.value_set = value_sets[entry["valueSet"]]
            node.any_resource = node.kind == "Resource"
    for name, elements in table["types"].items():
        for path, entry in elements.items():
            node = nodes[(name, path)]
            branches = [node.children] if node.children else []
            if "ref" in entry:
                target = nodes.get((name, entry["ref"]))
                if target is not None:
                    branches.append(target.children)
            elif node.kind in roots and not node.any_resource:
                branches.append(roots[node.kind])
            node.branches = tuple(branches)
    for node in nodes.values():  # the intermediate (backbone) elements, not in the table
        if not node.branches and node.children:
            node.branches = (node.children,)
    return roots


def _node(root: dict[str, Node], nodes: dict[tuple[str, str], Node], type_name: str, path: str) -> Node:
    """The node of ``path`` under ``root``, made (with its parents) if need be."""
    children, node, walked = root, None, ""
    for part in path.split("."):
        walked = f"{walked}.{part}" if walked else part
        node = children.get(part)
        if node is None:
            node = children[part] = nodes[(type_name, walked)] = Node()
        children = node.children
    assert node is not None
    return node


def binding_issues(resource: Any) -> list[dict]:
    """One ``code-invalid`` issue per code of ``resource`` outside its required value set (none: all good).

    Safe on any JSON: what is not of the expected shape is left to structural validation.
    """
    issues: list[dict] = []
    if isinstance(resource, dict):
        _resource(resource, str(resource.get("resourceType")), issues)
    return issues


def check_required_bindings(resource: Any) -> None:
    """Raise a 422 FHIRError with one issue per bad code."""
    issues = binding_issues(resource)
    if issues:
        raise FHIRError(422, issues[0]["diagnostics"], code="code-invalid", issues=issues)


def _resource(resource: dict, path: str, issues: list[dict]) -> None:
    tree = trees().get(resource.get("resourceType"))  # type: ignore[arg-type]
    if tree is not None:
        _walk(tree, resource, path, issues)


def _walk(tree: dict[str, Node], node: dict, path: str, issues: list[dict]) -> None:
    # The hot loop of validation: the tree holds only the few elements that can lead to a binding.
    for key, child in tree.items():
        value = node.get(key)
        if value is None:
            continue
        if type(value) is list:
            for i, item in enumerate(value):
                _visit(child, item, f"{path}.{key}[{i}]", issues)
        else:
            _visit(child, value, f"{path}.{key}", issues)


def _visit(element: Node, value: Any, path: str, issues: list[dict]) -> None:
    if element.value_set is not None:
        _check(element, value, path, issues)
    if type(value) is not dict:
        return
    if element.any_resource:
        _resource(value, path, issues)
        return
    for branch in element.branches:
        _walk(branch, value, path, issues)


def _check(element: Node, value: Any, path: str, issues: list[dict]) -> None:
    value_set = element.value_set
    assert value_set is not None
    kind = element.kind
    if kind == "CodeableConcept":
        codings = value.get("coding") if type(value) is dict else None
        if type(codings) is not list:
            return
        coded = [c for c in codings if type(c) is dict and isinstance(c.get("code"), str)]
        # One coding in the value set suffices; the others may translate it.
        if coded and not any(value_set.has(c.get("system"), c["code"]) for c in coded):
            shown = ", ".join(repr(c["code"]) for c in coded)
            issues.append(_issue(path, f"no coding ({shown}) is a code of", value_set))
    elif kind in ("Coding", "Quantity"):
        if type(value) is dict and isinstance(value.get("code"), str) and not value_set.has(
                value.get("system"), value["code"]):
            issues.append(_issue(path, f"{value['code']!r} (system {value.get('system')}) is not a code of", value_set))
    elif isinstance(value, str) and value not in value_set.codes:
        issues.append(_issue(path, f"{value!r} is not a code of", value_set))


def _issue(path: str, what: str, value_set: ValueSet) -> dict:
    return issue("error", "code-invalid", f"{path}: {what} the required value set {value_set.describe()}", [path])
