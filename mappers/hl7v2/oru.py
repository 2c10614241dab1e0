"""ORU^R01 -> one DiagnosticReport per OBR grouping its Observations (one per OBX), and the documents its
OBX of type ED (a CDA R2 in Base64, as CI-SIS labs send it) or RP carry as DocumentReferences. Pure.

CI-SIS ("transmission de documents CDA en HL7 v2"): PRT after a document's OBX names its author (SB)
and recipients (RCT); OBX coded in ``MetaDMPMSS`` (DESTDMP, MASQUE_PS...) are the document's sharing
metadata, kept on the DocumentReference. OBX-11 (or OBR-25) ``C`` replaces the document, ``D`` deletes it.
Under an OBR with a filler order number (OBR-3), a result is identified by that number, its code and
its sub-id (else its set id): a correction (OBX-11 C) updates the Observation it corrects.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from fhir_server import write

from . import cda, documents, ed
from .changes import Changes, conditional, provisional
from .context import Context, first_order_number
from .datatypes import codeable_concept, date_time
from .documents import Content, Document
from .er7 import field as field_of
from .er7 import repetitions, set_id, unescape, value
from .obx import observation
from .problems import Problem
from .prt import participations

METADATA_SYSTEM = "METADMPMSS"  # OBX-3.3 of the CI-SIS sharing metadata
DOCUMENT_TYPES = ("ED", "RP")
# OBR-25 result status (table 0123) -> DiagnosticReport.status
_REPORT_STATUS = {"O": "registered", "I": "registered", "S": "registered", "A": "partial", "P": "preliminary",
                  "R": "preliminary", "C": "corrected", "F": "final", "X": "cancelled"}


@dataclass
class _Group:
    """An OBR with the OBX after it (each with the PRT after it); ``obr`` None before the first OBR."""

    obr: object | None
    position: int
    results: list[tuple[int, object, list]] = field(default_factory=list)  # (OBX index, OBX, its PRTs)
    prts: list = field(default_factory=list)  # PRT right after the OBR


def changes(ctx: Context) -> Changes:
    """The changes of an ORU^R01 (its Patient and Encounter are the caller's)."""
    groups = _groups(ctx)
    if not any(group.results for group in groups):
        raise Problem(100, "ORU^R01 without an OBX segment", "OBX", "AR")
    out = Changes()
    for group in groups:
        out.extend(_group_changes(ctx, group))
    return out


def _groups(ctx: Context) -> list[_Group]:
    groups = [_Group(None, 0)]
    obr_count = obx_count = prt_count = 0
    for segment in ctx.segments:
        if segment.name == "OBR":
            obr_count += 1
            groups.append(_Group(segment, obr_count))
        elif segment.name == "OBX":
            obx_count += 1
            groups[-1].results.append((obx_count, segment, []))
        elif segment.name == "PRT":
            prt_count += 1
            target = groups[-1].results[-1][2] if groups[-1].results else groups[-1].prts
            target.append((prt_count, segment))
    return [group for group in groups if group.obr is not None or group.results]


def _is_metadata(obx) -> bool:
    return field_of(obx, 3, 3).upper() == METADATA_SYSTEM


def _group_changes(ctx: Context, group: _Group) -> Changes:
    out = Changes()
    obr = group.obr
    order_code = codeable_concept(repetitions(obr, 4)[0]) if obr is not None and repetitions(obr, 4) else None
    order_time = date_time(field_of(obr, 7, 1)) if obr is not None else None
    filler = first_order_number(obr, 3, "FILL", ctx.authority) if obr is not None else None
    placer = first_order_number(obr, 2, "PLAC", ctx.authority) if obr is not None else None
    observations: list[str] = []
    codes: list[dict] = []  # the results' codes: the first stands for an empty OBR-4
    document_obx = []
    metadata: list[dict] = []
    for index, obx, prts in group.results:
        kind = field_of(obx, 2, 1).upper()
        if _is_metadata(obx):
            metadata.append(_metadata(obx, kind))
        elif kind in DOCUMENT_TYPES:
            document_obx.append((index, obx, prts))
        else:
            change = _observation(ctx, index, obx, order_code, order_time, filler)
            codes.append(change.resource["code"])
            observations.append(out.add(change, f"OBX^{index}"))
    report_ref = None
    if obr is not None:
        report_id = filler or placer
        report_ref = _report_ref(ctx, group, report_id)
    if document_obx:
        document, doc_changes, attachments = _document(ctx, group, document_obx, metadata, filler or placer,
                                                       order_code, order_time, report_ref)
        out.extend(doc_changes)
    else:
        document, attachments = None, []
    if obr is not None:
        code = order_code or (codes[0] if codes else None) or (document.type if document else None)
        report = _report(ctx, obr, code or {"text": "report"}, order_time, filler, placer, observations, attachments,
                         document)
        where = f"OBR^{group.position}"
        key = filler or placer
        if key is None:
            report["id"] = report_ref.split("/", 1)[1]
            out.add(write.Change(write.CREATE, "DiagnosticReport", id=report["id"], resource=report), where)
        else:
            out.add(conditional("DiagnosticReport", report, key), where)
    return out


def _report_ref(ctx: Context, group: _Group, key: dict | None) -> str:
    if key is None:
        return f"DiagnosticReport/{ctx.created_id('DiagnosticReport', f'OBR^{group.position}')}"
    return f"DiagnosticReport/{provisional('DiagnosticReport', key)}"


def _observation(ctx: Context, index: int, obx, order_code, order_time, filler) -> write.Change:
    resource = observation(obx, index, ctx.patient, ctx.encounter, order_code, order_time)
    if filler is None:
        resource["id"] = ctx.created_id("Observation", f"OBX^{index}")
        return write.Change(write.CREATE, "Observation", id=resource["id"], resource=resource)
    code = ((resource["code"].get("coding") or [{}])[0]).get("code", "")
    part = field_of(obx, 4) or str(set_id(obx, index))
    key = {**filler, "value": f"{filler['value']}/{code}/{part}"}
    resource["identifier"] = [key]
    return conditional("Observation", resource, key)


def _metadata(obx, kind: str) -> dict:
    """A MetaDMPMSS OBX as a sub-extension: Y/N as a boolean, ED as its text, else its code."""
    code = field_of(obx, 3, 1) or "metadata"
    reps = repetitions(obx, 5)
    if kind == "ED" and reps:
        data = value(reps[0], 5)
        try:
            raw, _ = ed.decoded(obx, "")
        except Problem:
            # metadata must not refuse the document: a Base64 cut short (as in the CI-SIS samples) is read
            # as far as it goes, anything else kept as sent
            try:
                raw = base64.b64decode(data[: len(data) - len(data) % 4])
            except (binascii.Error, ValueError):
                raw = data.encode("utf-8")
        text = raw.decode("utf-8", errors="replace")
        return {"url": code, "valueString": text}
    answer = value(reps[0], 1).upper() if reps else ""
    if answer in ("Y", "N"):
        return {"url": code, "valueBoolean": answer == "Y"}
    concept = codeable_concept(reps[0]) if reps else None
    if concept:
        return {"url": code, "valueCodeableConcept": concept}
    return {"url": code, "valueString": unescape(reps[0].to_er7()) if reps else ""}


def _document(ctx: Context, group: _Group, document_obx: list, metadata: list[dict], order: dict | None,
              order_code, order_time: str | None, report_ref: str | None) -> tuple[Document, Changes, list[dict]]:
    out = Changes()
    first_index, first, _ = document_obx[0]
    where = f"OBX^{first_index}"
    statuses = {field_of(obx, 11).upper() for _, obx, _ in document_obx}
    obr_status = field_of(group.obr, 25).upper() if group.obr is not None else ""
    if statuses & {"D", "W"}:
        action = documents.DELETE
    elif "C" in statuses or obr_status == "C":
        action = documents.REPLACE
    else:
        action = documents.NEW
    contents = []
    for index, obx, _ in document_obx:
        title = field_of(obx, 3, 2) or field_of(obx, 3, 1)
        if field_of(obx, 2, 1).upper() == "RP":
            contents.append(Content(title, pointer=ed.pointer(obx, f"OBX^{index}", title)))
        else:
            raw, mime = ed.decoded(obx, f"OBX^{index}")
            contents.append(Content(title, raw, mime))
    if order is None:
        raise Problem(101, "a document needs its order's filler or placer number (OBR-3, OBR-2) to be found"
                           " again", f"OBR^{group.position}^3" if group.obr is not None else where, "AE")
    set_id = {k: v for k, v in order.items() if k != "type"}
    version, replaces, exact = _versions(set_id, action, contents)
    if action == documents.DELETE:
        contents = []  # what goes is named, not kept again
    prts = [p for _, _, found in document_obx for p in found] + group.prts
    people = participations(prts, ctx.authority, ctx.patient, out)
    code_reps = repetitions(first, 3)
    document = Document(
        version=version, action=action, source=where, set_id=set_id, replaces=replaces, exact=exact,
        type=codeable_concept(code_reps[0]) if code_reps else order_code,
        doc_status="preliminary" if statuses & {"P", "R", "S"} else "final",
        date=date_time(field_of(first, 14, 1)) or order_time,
        contents=contents, authors=people.authors, recipients=people.recipients,
        metadata=metadata + people.metadata, related=[report_ref] if report_ref else [],
    )
    doc_changes, attachments = documents.changes(document, ctx.patient, ctx.encounter)
    out.extend(doc_changes)
    return document, out, attachments


def _versions(set_id: dict, action: str, contents: list[Content]) -> tuple[dict, dict, bool]:
    """(this version's identifier, the identifier of the version it replaces or deletes, whether that
    identifier names one version rather than the document's set).

    A CDA names itself (its id) and its parent (relatedDocument): those are used. Else the order number
    names the document, and a fingerprint of its content and its step (F, C) tells its versions apart: a
    resend is the same version, a correction another; what it replaces is the order's current document.
    """
    identity = next((found for found in (cda.identity(c.raw) for c in contents if c.raw) if found), None)
    if identity is not None:
        if action == documents.DELETE:
            return identity.id, identity.id, True
        return identity.id, identity.parent or set_id, identity.parent is not None
    fingerprint = ed.digest([c.raw or c.pointer["url"].encode() for c in contents]) if contents else "none"
    step = "C" if action == documents.REPLACE else "F"
    return {**set_id, "value": f"{set_id['value']}/{step}/{fingerprint}"}, set_id, False


def _report(ctx: Context, obr, order_code, order_time, filler, placer, observations: list[str],
            attachments: list[dict], document: Document | None) -> dict:
    status = _REPORT_STATUS.get(field_of(obr, 25).upper(), "unknown")
    if document is not None and document.action == documents.DELETE:
        status = "entered-in-error"
    elif document is not None and document.action == documents.REPLACE and status == "final":
        status = "corrected"
    report: dict = {"resourceType": "DiagnosticReport"}
    identifiers = [i for i in (filler, placer) if i]
    if identifiers:
        report["identifier"] = identifiers
    report.update(status=status, code=order_code, subject={"reference": ctx.patient})
    if ctx.encounter:
        report["encounter"] = {"reference": ctx.encounter}
    if order_time:
        report["effectiveDateTime"] = order_time
    issued = date_time(field_of(obr, 22, 1))
    if issued and "T" in issued:
        report["issued"] = issued
    if document is not None and document.authors:
        report["performer"] = [{"reference": ref} for ref in dict.fromkeys(document.authors)]
    if observations:
        report["result"] = [{"reference": ref} for ref in observations]
    if attachments:
        report["presentedForm"] = [{k: v for k, v in a.items() if k != "creation"} for a in attachments]
    return report
