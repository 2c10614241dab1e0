"""A document a message carries (ORU with OBX type ED or RP, MDM with TXA) as a DocumentReference with its
Binary; a replacement supersedes the document it replaces, a deletion marks it entered-in-error. Pure.

Each version of a document is found by its own identifier (TXA-12, or the CDA's id, or the order number
with a fingerprint of its content): a resend updates it, never duplicates it. A replacement patches the
current version of the document it names to ``superseded`` and points at it (``relatesTo`` replaces), as
IHE MHD does; a deletion patches it to ``entered-in-error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server import write
from fhir_server.codes import RELAIS_CODE_SYSTEMS

from . import ed
from .changes import Changes, conditional, patched, token
from .datatypes import provisional_id

STRUCTURE_DEFINITIONS = RELAIS_CODE_SYSTEMS.rsplit("/", 1)[0] + "/StructureDefinition"
INTENDED_RECIPIENT = f"{STRUCTURE_DEFINITIONS}/intended-recipient"
DOCUMENT_METADATA = f"{STRUCTURE_DEFINITIONS}/hl7v2-document-metadata"
NEW, REPLACE, DELETE = "new", "replace", "delete"
# TXA-17 document completion status (table 0271) -> DocumentReference.docStatus
DOC_STATUS = {"LA": "final", "AU": "final", "DO": "final", "PA": "preliminary", "IP": "preliminary",
              "IN": "preliminary", "DI": "preliminary"}


@dataclass
class Content:
    """One representation of the document: bytes to keep in a Binary, or an attachment pointing elsewhere."""

    title: str
    raw: bytes | None = None
    mime: str = "application/octet-stream"
    pointer: dict | None = None  # an RP's attachment


@dataclass
class Document:
    """What a message says of one document."""

    version: dict  # the identifier of this version (DocumentReference.masterIdentifier)
    action: str  # NEW, REPLACE or DELETE
    source: str  # where in the message (OBX^1, TXA^1)
    set_id: dict | None = None  # shared by every version (an ORU's filler order number)
    replaces: dict | None = None  # the identifier of the version it replaces (TXA-13), else set_id
    exact: bool = False  # ``replaces`` names one version (TXA-13, a CDA's parent), not every version (set_id)
    type: dict | None = None
    doc_status: str | None = None
    date: str | None = None
    contents: list[Content] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)  # references
    authenticator: str | None = None
    recipients: list[dict] = field(default_factory=list)  # References
    metadata: list[dict] = field(default_factory=list)  # sub-extensions (MetaDMPMSS, REPLY)
    related: list[str] = field(default_factory=list)  # the DiagnosticReport it presents


def changes(document: Document, subject: str, encounter: str | None) -> tuple[Changes, list[dict]]:
    """(the changes, the attachments written) for ``document`` of ``subject``."""
    out = Changes()
    status_patch = {"op": "replace", "path": "/status"}
    if document.action == DELETE:
        target = document.replaces or document.version
        out.add(patched("DocumentReference", target,
                        [{**status_patch, "value": "entered-in-error"},
                         {"op": "add", "path": "/docStatus", "value": "entered-in-error"}],
                        status=None if document.exact else "current"), document.source)
        return out, []
    replaced = None
    if document.action == REPLACE and document.replaces is not None:
        # a version named exactly is patched whatever its status (a resend patches it again, the same);
        # a document named by its set (an order number) is its current version
        replaced = out.add(patched("DocumentReference", document.replaces, [{**status_patch, "value": "superseded"}],
                                   status=None if document.exact else "current", other_than=document.version),
                           document.source)
    attachments = []
    for number, content in enumerate(document.contents, 1):
        if content.pointer is not None:
            attachments.append(content.pointer)
            continue
        assert content.raw is not None
        ident = provisional_id("Binary", f"{token(document.version)}#{number}")
        binary = {**ed.binary(content.raw, content.mime), "id": ident}
        out.add(write.Change(write.UPDATE, "Binary", id=ident, resource=binary), document.source)
        attachments.append(ed.attachment(content.raw, content.mime, f"Binary/{ident}", content.title, document.date))
    resource = _reference(document, subject, encounter, attachments, replaced)
    out.add(conditional("DocumentReference", resource, document.version), document.source)
    return out, attachments


def _reference(document: Document, subject: str, encounter: str | None, attachments: list[dict],
               replaced: str | None) -> dict:
    identifiers = [i for i in (document.set_id, document.version) if i]
    resource: dict = {"resourceType": "DocumentReference", "masterIdentifier": document.version,
                      "identifier": identifiers, "status": "current"}
    if document.doc_status:
        resource["docStatus"] = document.doc_status
    if document.type:
        resource["type"] = document.type
    resource["subject"] = {"reference": subject}
    if document.date and "T" in document.date:
        resource["date"] = document.date  # an instant: a date alone is not one
    if document.authors:
        resource["author"] = [{"reference": ref} for ref in dict.fromkeys(document.authors)]
    if document.authenticator:
        resource["authenticator"] = {"reference": document.authenticator}
    if replaced:
        resource["relatesTo"] = [{"code": "replaces", "target": {"reference": replaced}}]
    resource["content"] = [{"attachment": attachment} for attachment in attachments] or [
        {"attachment": {"title": "document sent without content"}}]
    context: dict = {}
    if encounter:
        context["encounter"] = [{"reference": encounter}]
    if document.related:
        context["related"] = [{"reference": ref} for ref in document.related]
    if context:
        resource["context"] = context
    extensions = [{"url": INTENDED_RECIPIENT, "valueReference": ref} for ref in document.recipients]
    if document.metadata:
        extensions.append({"url": DOCUMENT_METADATA, "extension": document.metadata})
    if extensions:
        resource["extension"] = extensions
    return resource
