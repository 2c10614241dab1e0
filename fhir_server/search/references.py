"""Literal references (``Patient/p1``, ``http://x/fhir/Patient/p1/_history/2``): their type and id."""

from __future__ import annotations

import re
from typing import Any

# Type/id at the end of a reference, with an optional version: what the parser and the rows both read.
TYPE_ID = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def split_reference(ref: str) -> tuple[str | None, str | None]:
    """(type, id) of a relative or absolute literal reference; (None, None) for ``#x``, ``urn:``."""
    m = TYPE_ID.search(ref)
    if m:
        return m.group(1), m.group(2)
    return None, None


def reference_type(value: Any) -> str | None:
    """The type a Reference element points at: from its literal reference, else its ``type``."""
    if type(value) is not dict:
        return None
    ref = value.get("reference")
    if isinstance(ref, str):
        t, _id = split_reference(ref)
        if t:
            return t
    return value.get("type")
