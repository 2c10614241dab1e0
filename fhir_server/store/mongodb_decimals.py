"""Decimals on MongoDB, kept as they were written: BSON's double writes 0.10 back as 0.1.

On the way in, each ``FHIRDecimal`` of a resource becomes a ``Decimal128`` (its value and precision,
what MongoDB's own tools see), and the texts of all of them, in document order, go beside the resource
as ``decimals`` (Decimal128 writes 1e2 as 1E+2, and cannot hold more than 34 digits); so does an
integer past 64 bits, which BSON cannot hold (it reads back as a decimal of the same digits). On the way out
the n-th Decimal128 of the resource becomes ``FHIRDecimal(decimals[n])``. A resource without decimals
is stored as it is, and documents stored before this (doubles, no ``decimals``) read as they did.
"""

from __future__ import annotations

from decimal import DecimalException
from typing import Any

from bson.decimal128 import Decimal128

from ..fhirjson import FHIRDecimal

_INT64 = range(-(2**63), 2**63)


def _decimal128(value: FHIRDecimal) -> Decimal128:
    try:
        return Decimal128(value.text)
    except DecimalException:  # more digits than Decimal128 holds: its text is kept in ``decimals``
        return Decimal128(repr(float(value)))


def _encoded(node: Any, texts: list[str]) -> Any:
    """``node`` with its decimals as Decimal128, copying only what changes (the caller keeps ``node``)."""
    kind = type(node)
    if kind is FHIRDecimal:
        texts.append(node.text)
        return _decimal128(node)
    if kind is int and node not in _INT64:  # JSON allows it, BSON has no such integer: a decimal of its digits
        texts.append(str(node))
        return _decimal128(FHIRDecimal(str(node)))
    if kind is dict:
        changed = None
        for key, value in node.items():
            new = _encoded(value, texts)
            if new is not value:
                if changed is None:
                    changed = dict(node)
                changed[key] = new
        return node if changed is None else changed
    if kind is list:
        items = [_encoded(value, texts) for value in node]
        return node if all(a is b for a, b in zip(items, node, strict=True)) else items
    return node


def encoded(resource: dict | None) -> tuple[dict | None, list[str]]:
    """The document to store for ``resource`` and the texts of its decimals (empty: none)."""
    texts: list[str] = []
    return (None if resource is None else _encoded(resource, texts)), texts


def _decoded(node: Any, texts: list[str], position: list[int]) -> Any:
    kind = type(node)
    if kind is Decimal128:
        n = position[0]
        position[0] += 1
        return FHIRDecimal(texts[n]) if n < len(texts) else FHIRDecimal(str(node))
    if kind is dict:
        for key, value in node.items():
            node[key] = _decoded(value, texts, position)
    elif kind is list:
        for i, value in enumerate(node):
            node[i] = _decoded(value, texts, position)
    return node


def decoded(document: dict | None, texts: list[str] | None) -> dict | None:
    """The resource a stored ``document`` stands for (changed in place: it was just read)."""
    if document is None or not texts:
        return document
    return _decoded(document, texts, [0])


__all__ = ["decoded", "encoded"]
