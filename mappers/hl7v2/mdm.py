"""MDM^T02 (a new document), T04 (its status changed), T10 (it replaces another) -> a DocumentReference
with its Binary, found again by its unique document number (TXA-12); T10 supersedes its parent (TXA-13),
and an OBX-11 ``D`` (CI-SIS deletion) marks the document entered-in-error. Pure.

The document is the OBX of type ED or RP (a CDA as CI-SIS sends it), else the text of its TX/ST/FT OBX
lines. PRT after the OBX (CI-SIS, pre-adopted from v2.9) names its author and recipients; OBX coded in
``MetaDMPMSS`` are its sharing metadata.
"""

from __future__ import annotations

from . import documents, ed
from .changes import Changes, created_once
from .context import Context
from .datatypes import authority_system, codeable_concept, date_time, local_system
from .documents import Content, Document
from .er7 import field, repetitions, value
from .oru import DOCUMENT_TYPES, METADATA_SYSTEM, _metadata
from .participants import practitioner
from .problems import Problem
from .prt import participations

_TEXT_TYPES = ("TX", "ST", "FT")


def _document_number(txa, number: int, authority: str) -> dict | None:
    """TXA-12 / TXA-13 (EI) as an Identifier."""
    reps = repetitions(txa, number)
    ident = value(reps[0], 1) if reps else ""
    if not ident:
        return None
    system = authority_system(value(reps[0], 2), value(reps[0], 3), value(reps[0], 4))
    return {"system": system or local_system(authority), "value": ident}


def changes(ctx: Context) -> Changes:
    """The changes of an MDM^T02/T04/T10 (its Patient and Encounter are the caller's)."""
    _, txa = ctx.required("TXA")[0]
    version = _document_number(txa, 12, ctx.authority)
    if version is None:
        raise Problem(101, "TXA-12 (unique document number) is empty", "TXA^1^12", "AE")
    parent = _document_number(txa, 13, ctx.authority)
    out = Changes()
    obxs = ctx.named("OBX")
    statuses = {field(obx, 11).upper() for _, obx in obxs if field(obx, 3, 3).upper() != METADATA_SYSTEM}
    if statuses & {"D", "W"} or field(txa, 19).upper() in ("CA", "OB") and ctx.head.trigger == "T04":
        action = documents.DELETE
    elif ctx.head.trigger == "T10":
        if parent is None:
            raise Problem(101, "TXA-13 (parent document number) names the document T10 replaces: it is empty",
                          "TXA^1^13", "AE")
        action = documents.REPLACE
    else:
        action = documents.NEW
    contents, metadata, kind, prts = _contents(ctx, action)
    people = participations(prts, ctx.authority, ctx.patient, out)
    authors = list(people.authors)
    for number in (9, 5):  # originator, primary activity provider
        for xcn in repetitions(txa, number)[:1]:
            made = practitioner(xcn, ctx.authority)
            if made is not None:
                authors.append(out.add(created_once("Practitioner", *made), f"TXA^1^{number}"))
    authenticator = None
    signer = field(txa, 22, 1)
    if signer:
        authenticator = people.people.get(signer)
        if authenticator is None and repetitions(txa, 22):
            made = practitioner(repetitions(txa, 22)[0], ctx.authority)
            authenticator = out.add(created_once("Practitioner", *made), "TXA^1^22") if made else None
    type_reps = repetitions(txa, 2)
    document = Document(
        version=version, action=action, source="TXA^1",
        replaces=version if action == documents.DELETE else parent, exact=True,
        type=kind or (codeable_concept(type_reps[0]) if type_reps else None),
        doc_status=documents.DOC_STATUS.get(field(txa, 17).upper()),
        date=date_time(field(txa, 6, 1)) or date_time(field(txa, 4, 1)),
        contents=contents, authors=authors, authenticator=authenticator, recipients=people.recipients,
        metadata=metadata + people.metadata,
    )
    doc_changes, _ = documents.changes(document, ctx.patient, ctx.encounter)
    out.extend(doc_changes)
    return out


def _contents(ctx: Context, action: str) -> tuple[list[Content], list[dict], dict | None, list]:
    """The document's contents, metadata, type (the document OBX's code) and the PRT after its OBX
    ((position, segment))."""
    contents: list[Content] = []
    metadata: list[dict] = []
    lines: list[str] = []
    kind = None
    prts = []
    current_is_document = False
    obx_count = prt_count = 0
    for segment in ctx.segments:
        if segment.name == "PRT":
            prt_count += 1
            if current_is_document:
                prts.append((prt_count, segment))
        if segment.name != "OBX":
            continue
        obx_count += 1
        where = f"OBX^{obx_count}"
        value_type = field(segment, 2, 1).upper()
        current_is_document = False
        if field(segment, 3, 3).upper() == METADATA_SYSTEM:
            metadata.append(_metadata(segment, value_type))
            continue
        current_is_document = True
        title = field(segment, 3, 2) or field(segment, 3, 1)
        code_reps = repetitions(segment, 3)
        kind = kind or (codeable_concept(code_reps[0]) if code_reps else None)
        if value_type == "RP":
            contents.append(Content(title, pointer=ed.pointer(segment, where, title)))
        elif value_type in DOCUMENT_TYPES and action != documents.DELETE:
            raw, mime = ed.decoded(segment, where)
            contents.append(Content(title, raw, mime))
        elif value_type in _TEXT_TYPES:
            lines.extend(value(rep) for rep in repetitions(segment, 5))
    if lines and action != documents.DELETE:
        contents.append(Content("text", "\n".join(lines).encode("utf-8"), "text/plain"))
    return contents, metadata, kind, prts
