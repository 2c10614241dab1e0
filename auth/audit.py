"""AuditEvents in the IHE Basic Audit Log Patterns (BALP) shape, one per interaction, sent through the outbox.

``build_audit_event`` is pure. During a request, ``RequestAudit`` collects what ``authenticate`` and
``decide`` saw; an ``after_request`` hook turns it into the facts of each event (the arguments of
``build_audit_event``, with the event's id and time) and appends them to the outbox in a store
transaction of their own before the response leaves, so a crash after answering loses none. The
outbox handler builds the AuditEvent from the facts and stores it through the write path: the
request pays for a 300-byte row, not for building and serialising a 2 kB resource.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_server import compartment, write
from fhir_server.actor import SERVER, Actor
from fhir_server.audit_origin import CLIENT_ID_SYSTEM, SERVER_TAG
from fhir_server.ids import new_id

log = logging.getLogger(__name__)

OUTBOX_KIND = "audit"
AUDIT_WRITE_CHUNK = 20
MAX_TARGETS_PER_EVENT = 200  # entities named by one event: a 1,000-entry transaction is five events
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# BALP action codes: C create, R read/vread/search, U update, D delete, E execute (operations, bundles)
_ACTION = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "search": "R",
    "history-instance": "R",
    "history-type": "R",
    "history-system": "R",
    "capabilities": "R",
    "update": "U",
    "patch": "U",
    "delete": "D",
}
# Interactions that are codes of http://hl7.org/fhir/restful-interaction as they stand
_RESTFUL_CODES = set(_ACTION) | {"batch", "transaction"}
# Events of the token server, as DICOM "User Authentication" with Login / Logout subtypes
_AUTH_EVENTS = {"token": ("110122", "Login"), "revoke": ("110123", "Logout")}


def _outcome(status: int) -> str:
    if status < 400:
        return "0"  # success
    if status < 500:
        return "4"  # minor failure: the request was refused (401, 403, 404, 422...)
    return "8"  # serious failure: the server failed


def build_audit_event(
    *,
    interaction: str,
    status: int,
    recorded: str,
    server_base: str,
    client_id: str | None = None,
    client_label: str | None = None,
    client_address: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    version: str | None = None,
    query: str | None = None,
    patients: list[str] | tuple[str, ...] = (),
    message: str | None = None,
    event_id: str | None = None,
    targets: list | tuple = (),
) -> dict:
    """One AuditEvent resource (R4) for one interaction; no I/O, no clock: everything comes in.

    ``interaction`` is one the access seam knows (read, search, operation:everything...) or
    ``token`` / ``revoke`` for the token server. ``status`` is the HTTP status of the outcome.
    Give ``event_id`` to make the result deterministic (the outbox handler relies on it).
    ``targets`` are further ``(type, id, version)`` of the same interaction (the entries of a Bundle).
    """
    if interaction in _AUTH_EVENTS:
        code, display = _AUTH_EVENTS[interaction]
        event_type = {"system": DCM, "code": "110114", "display": "User Authentication"}
        subtype = [{"system": DCM, "code": code, "display": display}]
        action = "E"
    else:
        event_type = {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"}
        code = interaction if interaction in _RESTFUL_CODES else "operation"
        subtype = [{"system": RESTFUL, "code": code, "display": interaction}]
        action = _ACTION.get(interaction, "E")
    who: dict[str, Any]
    if client_id:
        who = {"identifier": {"system": CLIENT_ID_SYSTEM, "value": client_id}}
        if client_label:
            who["display"] = client_label
    else:
        who = {"display": client_label or "unauthenticated caller"}
    requester: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
        "who": who,
        "requestor": True,
    }
    if client_address:
        requester["network"] = {"address": client_address, "type": "2"}  # 2: IP address
    server_agent = {
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"display": "Relais FHIR server"},
        "requestor": False,
        "network": {"address": server_base, "type": "5"},  # 5: URI
    }
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id or new_id(),
        # the server's mark: the write path refuses it on any other actor's AuditEvent
        "meta": {"tag": [dict(SERVER_TAG)]},
        "type": event_type,
        "subtype": subtype,
        "action": action,
        "recorded": recorded,
        "outcome": _outcome(status),
        "agent": [requester, server_agent],
        "source": {
            "site": server_base,
            "observer": {"display": "Relais FHIR server"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    outcome_desc = f"HTTP {status}" + (f": {message}" if message else "")
    event["outcomeDesc"] = outcome_desc
    entities: list[dict[str, Any]] = []
    for rtype, rid, vid in [(resource_type, resource_id, version), *targets]:
        if rtype and rid:
            entities.append(
                {
                    "what": {"reference": f"{rtype}/{rid}" + (f"/_history/{vid}" if vid else "")},
                    "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
                }
            )
    if query is not None:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "description": query,
                "query": base64.b64encode(query.encode()).decode(),
            }
        )
    for patient in sorted(set(patients)):
        entities.append(
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if entities:
        event["entity"] = entities
    return event


def now_instant() -> str:
    """The current time as a FHIR instant (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Decision:
    """One interaction the access seam was asked about during a request."""

    interaction: str
    resource_type: str | None
    resource_id: str | None = None
    version: str | None = None
    patients: tuple[str, ...] = ()
    denied: str | None = None  # the refusal message
    had_resource: bool = False  # decided on a resource (a bundle entry), not on a type


@dataclass
class RequestAudit:
    """What a request told the access seam, kept on ``flask.g`` until the response is ready."""

    client_id: str | None = None
    client_label: str | None = None
    patient: str | None = None  # the patient context of a patient/ token
    failure: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    # The decision each new one merges into, by (interaction, type, id), or (interaction,) for a check
    # without a resource: a look-up, not a scan of every earlier entry of a 1,000-entry Bundle.
    merge_targets: dict[tuple, Decision] = field(default_factory=dict)


def classify(method: str, path: str, base_path: str) -> tuple[str, str | None, str | None, str | None]:
    """(interaction, type, id, version) guessed from the URL, for requests refused before ``decide`` ran."""
    rest = path[len(base_path) :].strip("/") if path.startswith(base_path) else path.strip("/")
    parts = [p for p in rest.split("/") if p]
    method = method.upper()
    if not parts:
        return ("transaction" if method == "POST" else "search"), None, None, None
    if parts[0] == "metadata":
        return "capabilities", None, None, None
    if parts[0] == "_history":
        return "history-system", None, None, None
    if parts[-1].startswith("$"):
        return "operation:" + parts[-1][1:], parts[0] if len(parts) > 1 else None, (
            parts[1] if len(parts) > 2 else None
        ), None
    rtype = parts[0]
    if len(parts) == 1:
        return ("create" if method == "POST" else "search"), rtype, None, None
    if parts[1] == "_search":
        return "search", rtype, None, None
    if parts[1] == "_history":
        return "history-type", rtype, None, None
    rid = parts[1]
    if len(parts) >= 4 and parts[2] == "_history":
        return "vread", rtype, rid, parts[3]
    if len(parts) >= 3 and parts[2] == "_history":
        return "history-instance", rtype, rid, None
    by_method = {"GET": "read", "HEAD": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    return by_method.get(method, "operation:unknown"), rtype, rid, None


def outbox_payload(facts: dict) -> dict:
    """The outbox event that carries one AuditEvent's facts (``build_audit_event`` arguments)."""
    return {"kind": OUTBOX_KIND, "facts": facts}


def event_from_payload(payload: dict) -> dict:
    """The AuditEvent an outbox payload stands for."""
    return build_audit_event(**payload["facts"])


def append_events(store: Any, events: list[dict]) -> None:
    """Put the facts of ``events`` in the outbox, in a write of their own (``Store.outbox_enqueue``).

    Not durable (the store's audit-trail level): committed before the response leaves, so a
    process that dies after answering loses nothing; only a power cut could, and it would take
    the answer's effects with it. A durable commit (an fsync) per read would cost more than the read.
    """
    store.outbox_enqueue([outbox_payload(event) for event in events])


_WRITTEN = {"created": "create", "updated": "update", "deleted": "delete"}


def audit_write(store: Any, actor: Actor, results: list[write.Result], server_base: str) -> None:
    """Queue the AuditEvents of what ``actor`` wrote outside any request (an internal job, after its write).

    One event per interaction (create, update, delete), naming ``actor`` as the agent and every
    version written, with their patients; through the outbox, as a request's events are.
    """
    recorded = now_instant()
    by_interaction: dict[str, list] = {}
    for result in results:
        interaction = _WRITTEN.get(result.outcome)
        if interaction is not None and result.version is not None:  # "exists", "unchanged": nothing written
            by_interaction.setdefault(interaction, []).append(result.version)
    events = []
    for interaction, versions in by_interaction.items():
        for start in range(0, len(versions), MAX_TARGETS_PER_EVENT):
            first, *others = versions[start : start + MAX_TARGETS_PER_EVENT]
            patients = set().union(*(compartment.patient_ids(v.resource_type, v.resource) for v in [first, *others]))
            events.append(
                dict(
                    interaction=interaction,
                    status=201 if interaction == "create" else 200,
                    recorded=recorded,
                    server_base=server_base,
                    client_id=actor.client_id,
                    client_label=actor.name,
                    resource_type=first.resource_type,
                    resource_id=first.id,
                    version=str(first.version),
                    targets=[(v.resource_type, v.id, str(v.version)) for v in others],
                    patients=sorted(patients),
                    event_id=new_id(),
                )
            )
    if events:
        append_events(store, events)


def store_audit_events(store: Any, payloads: list[dict]) -> None:
    """Outbox batch handler for ``kind == "audit"``: the AuditEvents of one claim in one write.

    Idempotent: events carry their ids, so a redelivery (an expired lease) skips what is stored.
    Not durable, like the outbox entries they come from; pre-validated: ``build_audit_event`` is
    checked against the R4B model by the tests, and one write a batch (not one fsync'd, validated
    write a request) is what keeps auditing from costing more than the reads it records.
    """
    events = [event_from_payload(payload) for payload in payloads]
    stored = {v.id for v in store.read_many("AuditEvent", [event["id"] for event in events])}
    changes = [
        write.Change(write.CREATE, "AuditEvent", id=event["id"], resource=event, validated=True)
        for event in events
        if event["id"] not in stored
    ]
    # A few at a time: the main file's writer lock is held per transaction, and a request queued
    # behind 100 AuditEvents waited ~20 ms for it.
    for start in range(0, len(changes), AUDIT_WRITE_CHUNK):
        # events=False: an AuditEvent's own outbox event would have no reader (Subscriptions on
        # AuditEvent are refused) and cost a claim and a delete per request audited.
        write.write(store, changes[start : start + AUDIT_WRITE_CHUNK], SERVER, durable=False, events=False)
