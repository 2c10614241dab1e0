"""OBX values that are documents: ED (encapsulated data, a CDA R2 in Base64) as a Binary and its Attachment,
RP (reference pointer) as an Attachment that points elsewhere. Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
from urllib.parse import quote

from .datatypes import LOCAL_SYSTEM
from .er7 import repetitions, value
from .problems import Problem

# ED-3 / RP-4 data subtypes (table 0291) and ED-2 / RP-3 types (table 0191) as MIME types
_SUBTYPES = {
    "XML": "text/xml", "PDF": "application/pdf", "RTF": "application/rtf", "HTML": "text/html",
    "JPEG": "image/jpeg", "JPG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff", "GIF": "image/gif",
    "DICOM": "application/dicom", "PLAIN": "text/plain", "OCTET-STREAM": "application/octet-stream",
}
_TYPES = {"TEXT": "text/plain", "IM": "image/*", "AU": "audio/*", "AP": "application/octet-stream"}


def content_type(kind: str, subtype: str) -> str:
    """The MIME type of an ED or RP: the subtype when it is one (``XML``, ``application/pdf``), else the type."""
    if "/" in subtype:
        return subtype.lower()
    return _SUBTYPES.get(subtype.upper()) or _TYPES.get(kind.upper()) or "application/octet-stream"


def decoded(obx, where: str) -> tuple[bytes, str]:
    """(the bytes of an ED value, its MIME type): ED-4 Base64, Hex or A (plain text)."""
    reps = repetitions(obx, 5)
    ed = reps[0] if reps else None
    data, encoding = value(ed, 5), value(ed, 4).upper()
    if not data:
        raise Problem(101, "OBX-5 (encapsulated data) carries no data (ED-5)", f"{where}^5")
    try:
        if encoding == "BASE64":
            raw = base64.b64decode("".join(data.split()), validate=True)
        elif encoding == "HEX":
            raw = bytes.fromhex(data)
        else:
            raw = data.encode("utf-8")
    except (binascii.Error, ValueError):
        raise Problem(102, f"OBX-5 is not valid {value(ed, 4) or 'data'} (ED-4)", f"{where}^5") from None
    return raw, content_type(value(ed, 2), value(ed, 3))


def binary(raw: bytes, mime: str) -> dict:
    """A Binary holding ``raw``."""
    return {"resourceType": "Binary", "contentType": mime, "data": base64.b64encode(raw).decode("ascii")}


def attachment(raw: bytes, mime: str, url: str, title: str, created: str | None) -> dict:
    """The Attachment of a stored document: where it is, its size and SHA-1 (MHD's hash)."""
    found: dict = {"contentType": mime, "url": url, "size": len(raw),
                   "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")}  # noqa: S324 (MHD)
    if title:
        found["title"] = title
    if created:
        found["creation"] = created
    return found


def pointer(obx, where: str, title: str) -> dict:
    """An RP value (pointer, application id, type, subtype) as an Attachment with its url."""
    reps = repetitions(obx, 5)
    rp = reps[0] if reps else None
    target = value(rp, 1)
    if not target:
        raise Problem(101, "OBX-5 (reference pointer) is empty", f"{where}^5")
    if ":" not in target:
        # a pointer local to the application that holds it (RP-2)
        # RP-2 (HD) is read whole: hl7apy does not name the subcomponents of a value of varying type
        namespace, universal = ([*value(rp, 2).split("&"), "", ""])[:2]
        application = universal or namespace or "unknown"
        target = f"{LOCAL_SYSTEM}{quote(application, safe='-._~')}/{quote(target, safe='-._~/')}"
    found: dict = {"contentType": content_type(value(rp, 3), value(rp, 4)), "url": target}
    if title:
        found["title"] = title
    return found


def digest(parts: list[bytes]) -> str:
    """A short content fingerprint: what tells two versions of a document apart when nothing else does."""
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(hashlib.sha256(part).digest())
    return hashed.hexdigest()[:16]
