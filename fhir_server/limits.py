"""How large and how deep a resource may be, checked on the parsed JSON before validation and extraction.

Validation (pydantic) and index extraction cost grows with the number of elements: a Patient with
50,000 identifiers held a worker 41 s, one with 100,000 names 20 s. One iterative walk of the parsed
JSON (no recursion, so depth cannot overflow the stack) refuses such a resource first, naming the element:

- more repetitions of one element than ``max_repetitions``: 422;
- more elements (object members and array items, counted together) than ``max_elements``: 413;
- nesting deeper than ``max_depth`` (objects and arrays): 422;
- a number beyond an IEEE 754 double (R4 points decimal implementers at its limits; the index
  compares doubles): 422. A value like 1e400 cannot be searched or compared, so it is not stored.

The limits are per process, set by ``configure`` from the RELAIS_* settings when an app is created.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import FHIRError

_DOUBLE_MAX = sys.float_info.max
_DECIMAL_MAX = Decimal(_DOUBLE_MAX)

# Elements whose items are a collection of other things rather than facts about one thing: a Group of
# 20,000 patients is real. They are bounded by the element limit only.
COLLECTIONS = frozenset({
    "Bundle.entry",
    "Group.member",
    "List.entry",
    "CodeSystem.concept",
    "ValueSet.compose.include.concept",
    "ValueSet.expansion.contains",
    "ConceptMap.group.element",
})


@dataclass(frozen=True)
class Limits:
    """RELAIS_MAX_REPETITIONS, RELAIS_MAX_ELEMENTS, RELAIS_MAX_DEPTH."""

    max_repetitions: int = 1000
    max_elements: int = 100_000
    max_depth: int = 64


DEFAULT = Limits()
_configured = DEFAULT


class LimitExceeded(FHIRError):
    """A resource larger or deeper than the server accepts: refused whatever the request (even $validate)."""


def configure(limits: Limits) -> None:
    """Set this process's limits (``create_app`` does, from its Config)."""
    global _configured
    _configured = limits


def configured() -> Limits:
    return _configured


def from_config(config: Any) -> Limits:
    """The limits a Config names (its max_repetitions, max_elements, max_depth)."""
    return Limits(config.max_repetitions, config.max_elements, config.max_depth)


def element_path(root: str, path: tuple) -> str:
    """('name', 3, 'given') under Patient -> Patient.name[3].given."""
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _element(root: str, path: tuple) -> str:
    """The element's name without indices: Patient.name.given."""
    return ".".join([root, *(part for part in path if not isinstance(part, int))])


def check(resource: Any, limits: Limits | None = None) -> None:
    """Raise LimitExceeded (413, 422) or FHIRError (422, a number out of range) unless ``resource`` fits."""
    if type(resource) is not dict:
        return
    limits = limits or _configured
    root = resource.get("resourceType")
    root = root if isinstance(root, str) else "Resource"
    max_repetitions, max_elements, max_depth = limits.max_repetitions, limits.max_elements, limits.max_depth
    elements = 0
    stack: list[tuple[Any, tuple]] = [(resource, ())]
    pop, push = stack.pop, stack.append
    while stack:
        node, path = pop()
        if len(path) > max_depth:
            where = element_path(root, path)
            raise LimitExceeded(422, f"{where}: nested deeper than {max_depth} levels (RELAIS_MAX_DEPTH)",
                                code="too-long", expression=[where])
        if type(node) is dict:
            elements += len(node)
            items: Any = node.items()
        else:
            count = len(node)
            if count > max_repetitions and _element(root, path) not in COLLECTIONS:
                where = element_path(root, path)
                raise LimitExceeded(422, f"{where} has {count} repetitions: at most {max_repetitions} are accepted"
                                         " (RELAIS_MAX_REPETITIONS)", code="too-long", expression=[where])
            elements += count
            items = enumerate(node)
        if elements > max_elements:
            where = element_path(root, path)
            raise LimitExceeded(413, f"{root} has more than {max_elements} elements (reached at {where};"
                                     " RELAIS_MAX_ELEMENTS)", code="too-long", expression=[where])
        for key, value in items:
            kind = type(value)
            if kind is dict or kind is list:
                push((value, (*path, key)))
            elif kind is str or kind is bool or value is None:
                continue
            elif kind is float or kind is int:
                if not -_DOUBLE_MAX <= value <= _DOUBLE_MAX:  # also false for NaN
                    _out_of_range(root, (*path, key), value)
            elif not _fits_double(value):  # a Decimal, or a number type of the JSON parser's own
                _out_of_range(root, (*path, key), value)


def _fits_double(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite() and abs(value) <= _DECIMAL_MAX
    if isinstance(value, int | float):
        return -_DOUBLE_MAX <= value <= _DOUBLE_MAX
    return True


def _out_of_range(root: str, path: tuple, value: Any) -> None:
    where = element_path(root, path)
    shown = str(value)
    shown = shown if len(shown) <= 24 else f"{shown[:12]}...({len(shown)} characters)"
    raise FHIRError(422, f"{where}: {shown} is beyond the numbers this server stores (an IEEE 754 double:"
                         " at most about 1.8e308 in magnitude)", code="value", expression=[where])
