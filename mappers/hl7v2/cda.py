"""The identity a CDA R2 document gives itself: its id, its setId and the parent it replaces
(relatedDocument/parentDocument/id), as Identifiers. Pure; read only when the document is XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 (expat refuses entity amplification since 2.4.1)
from dataclasses import dataclass

V3 = "{urn:hl7-org:v3}"


@dataclass(frozen=True)
class Identity:
    id: dict
    set_id: dict | None = None
    parent: dict | None = None


def identifier(element) -> dict | None:
    """An II (root, extension) as an Identifier: ``urn:oid:root|extension``, or the root alone as a URI."""
    if element is None:
        return None
    root, extension = element.get("root", "").strip(), element.get("extension", "").strip()
    if not root:
        return None
    if extension:
        return {"system": f"urn:oid:{root}", "value": extension}
    return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}"}


def identity(raw: bytes) -> Identity | None:
    """The identity of a ClinicalDocument in ``raw``; None when it is not one (a PDF, a text, broken XML)."""
    if not raw.lstrip()[:1] == b"<":
        return None
    try:
        root = ET.fromstring(raw)  # noqa: S314 (see the import)
    except ET.ParseError:
        return None
    if root.tag != f"{V3}ClinicalDocument":
        return None
    own = identifier(root.find(f"{V3}id"))
    if own is None:
        return None
    parent = root.find(f"{V3}relatedDocument/{V3}parentDocument/{V3}id")
    return Identity(own, identifier(root.find(f"{V3}setId")), identifier(parent))
