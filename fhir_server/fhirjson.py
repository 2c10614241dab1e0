"""JSON as FHIR needs it: decimals keep the text they were written with, and a body may not repeat a key.

FHIR says a decimal's precision is significant: ``0.10`` is not ``0.1``, ``72.400`` not ``72.4``, ``1e2``
not ``100.0``. Every JSON number with a fraction or an exponent is read as a ``FHIRDecimal``: a float
for arithmetic, validation and search, that remembers its ``text``; ``dumps`` writes that text back
(orjson, through a ``Fragment``). So what a client sent is stored and answered digit for digit.

RFC 8259 leaves the meaning of a repeated key to each reader (Python keeps the last one, others the
first): a client's body whose ``resourceType`` says Patient to one reader and Observation to another is
refused (``parse_body`` raises ``DuplicateKey``). Stored documents, written by us, are read with ``loads``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


class FHIRDecimal(float):
    """A JSON number as it was written: a float everywhere, and ``text`` for writing it back unchanged."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> FHIRDecimal:
        self = super().__new__(cls, text)
        self.text = text
        return self

    # Immutable like a float: copies may share it (jsonpatch deep-copies resources), pickles keep the text.
    def __copy__(self) -> FHIRDecimal:
        return self

    def __deepcopy__(self, memo: dict) -> FHIRDecimal:
        return self

    def __reduce__(self) -> tuple:
        return (FHIRDecimal, (self.text,))


class DuplicateKey(ValueError):
    """An object of a JSON document names ``key`` twice."""

    def __init__(self, key: str):
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with any option builds a decoder per call.
_BODY = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_reject_constant, parse_float=FHIRDecimal)
_STORED = json.JSONDecoder(parse_float=FHIRDecimal)


def parse_body(text: str) -> Any:
    """A client's JSON document; ValueError when it is not JSON, DuplicateKey when an object repeats a key."""
    return _BODY.decode(text)


def loads(text: str | bytes) -> Any:
    """A JSON document we wrote (a stored resource), its decimals as written."""
    return _STORED.decode(text if isinstance(text, str) else text.decode("utf-8"))


def _default(value: Any) -> Any:
    if isinstance(value, FHIRDecimal):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_INT64 = range(-(2**63), 2**64)  # what orjson writes; the stdlib json writes any int


def _widened(node: Any) -> Any:
    """``node`` with what orjson refuses made writable: ints past 64 bits as fragments, keys as strings."""
    if type(node) is dict:
        return {k if isinstance(k, str) else json.dumps(k).strip('"'): _widened(v) for k, v in node.items()}
    if type(node) is list:
        return [_widened(v) for v in node]
    if type(node) is int and node not in _INT64:
        return orjson.Fragment(str(node))
    return node


def dumps(doc: Any, *, pretty: bool = False) -> bytes:
    """``doc`` as compact UTF-8 JSON (indented by 2 when ``pretty``), decimals as they were written.

    TypeError (orjson.JSONEncodeError) for what is not JSON.
    """
    option = orjson.OPT_INDENT_2 if pretty else 0
    try:
        return orjson.dumps(doc, default=_default, option=option)
    except orjson.JSONEncodeError:
        # Rare: integers past 64 bits (JSON allows them), keys that are not strings.
        return orjson.dumps(_widened(doc), default=_default, option=option)


def dumps_text(doc: Any) -> str:
    """``dumps`` as a str (SQLite's TEXT column, ndjson lines)."""
    return dumps(doc).decode("utf-8")


__all__ = ["DuplicateKey", "FHIRDecimal", "dumps", "dumps_text", "loads", "parse_body"]
