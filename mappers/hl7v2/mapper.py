"""One HL7 v2 message in, the changes to write and its ACK out. Pure: no store, no socket, no clock.

ADT (IHE PAM France: A01 A02 A03 A04 A05 A06 A07 A08 A11 A13 A28 A31) gives a Patient and an
Encounter; ORU^R01 gives a Patient and one Observation per OBX. The Patient, the Encounter and a result
under a filler order number are conditional updates on their identifier, so a message sent again
updates instead of duplicating.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from hl7apy.exceptions import HL7apyException

from fhir_server import write
from fhir_server.errors import FHIRError
from fhir_server.resources import validate
from fhir_server.search.parser import SearchError, parse
from mappers import partner

from . import er7
from .ack import acknowledge
from .datatypes import LOCAL_SYSTEM, V2_0203, authority_system, codeable_concept, date_time, provisional_id
from .er7 import Header, Unreadable
from .obx import observation
from .pid import patient
from .problems import Problem, as_hl7
from .pv1 import encounter

ADT_TRIGGERS = ("A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A13", "A28", "A31")
MESSAGE_TYPES = {"ADT": ADT_TRIGGERS, "ORU": ("R01",)}

log = logging.getLogger(__name__)


@dataclass
class Mapped(partner.Mapped):
    """What a message asks for: ``changes`` (all or none written), or the ``problem`` that stops it; and its
    MSH (``header``), which the ACK answers."""

    header: Header | None = None

    @property
    def code(self) -> str:
        """The ACK code if the changes are stored: AA, or the problem's AE/AR."""
        problem = as_hl7(self.problem)
        return problem.ack if problem else "AA"

    def ack(self, problem: partner.Problem | None = None, *, ack_id: str, now: datetime | None = None) -> str:
        """The ACK to send: ``problem`` is what storing ran into (access, store), else the mapping's own."""
        found = as_hl7(problem or self.problem)
        return acknowledge(self.header, found.ack if found else "AA", found, ack_id=ack_id, now=now)


def map_message(text: str) -> Mapped:
    """Map ER7 ``text``; never raises for bad input (the problem says AE or AR, code and location)."""
    try:
        message = er7.read(text)
    except Unreadable as exc:
        return Mapped(header=er7.first_header(text), problem=Problem(exc.code, exc.text, exc.location, exc.ack))
    try:
        head = er7.header(message)
    except HL7apyException as exc:
        return Mapped(problem=Problem(100, f"unreadable MSH: {exc}"[:200], "MSH^1", "AR"))
    try:
        changes, sources = _changes(message, head)
        _validate(changes, sources)
    except Problem as problem:
        return Mapped(header=head, problem=problem)
    except HL7apyException as exc:
        return Mapped(header=head, problem=Problem(100, f"unreadable message: {exc}"[:200], "", "AR"))
    except Exception:  # a message this mapper did not foresee is an AE to look at, never a crash
        log.exception("HL7 v2 message %s could not be mapped", head.control_id)
        return Mapped(header=head, problem=Problem(207, "the message could not be mapped (see the server log)", "",
                                                   "AE"))
    return Mapped(changes, sources, header=head)


def _changes(message, head: Header) -> tuple[list[write.Change], list[str]]:
    if head.version not in er7.SUPPORTED_VERSIONS:
        raise Problem(203, f"HL7 version {head.version or '(none)'!r} is not supported (2.3 to 2.8.2)",
                      "MSH^1^12", "AR")
    triggers = MESSAGE_TYPES.get(head.message_code)
    if triggers is None:
        raise Problem(200, f"message type {head.message_type or '(none)'!r} is not supported (ADT, ORU^R01)",
                      "MSH^1^9", "AR")
    if head.trigger not in triggers:
        raise Problem(201, f"event {head.message_type!r} is not supported ({head.message_code}: {' '.join(triggers)})",
                      "MSH^1^9", "AR")
    if not head.control_id:
        raise Problem(101, "MSH-10 (message control id) is empty", "MSH^1^10", "AR")
    pids = er7.segments(message, "PID")
    if not pids:
        raise Problem(100, f"{head.message_type} without a PID segment", "PID", "AR")
    msh = message.msh
    # identifiers without an assigning authority belong to the sender's domain
    authority = er7.field(msh, 4, 1) or er7.field(msh, 3, 1)
    person, key = patient(pids[0], authority)
    patient_id = provisional_id("Patient", _token(key))
    person["id"] = patient_id
    changes = [_conditional("Patient", person, key)]
    sources = ["PID^1"]
    event_time = _event_time(message)
    visit_ref = None
    for number, pv1 in enumerate(er7.segments(message, "PV1")[:1], 1):
        found = encounter(pv1, head.trigger, authority, f"Patient/{patient_id}", event_time)
        if found is not None:
            visit, visit_key = found
            visit["id"] = provisional_id("Encounter", _token(visit_key))
            visit_ref = f"Encounter/{visit['id']}"
            changes.append(_conditional("Encounter", visit, visit_key))
            sources.append(f"PV1^{number}")
    if head.message_code == "ORU":
        results = _results(message, f"Patient/{patient_id}", visit_ref, authority)
        if not results:
            raise Problem(100, "ORU^R01 without an OBX segment", "OBX", "AR")
        for index, resource, key in results:
            if key is None:
                changes.append(write.Change(write.CREATE, "Observation", resource=resource))
            else:
                resource["id"] = provisional_id("Observation", _token(key))
                changes.append(_conditional("Observation", resource, key))
            sources.append(f"OBX^{index}")
    return changes, sources


def _results(message, subject: str, visit_ref: str | None, authority: str) -> list[tuple[int, dict, dict | None]]:
    """One Observation per OBX, each under the OBR before it (its code and time stand in for missing ones).

    Under an OBR with a filler order number (OBR-3), a result is identified by that number, its code
    and its sub-id (else its set id): a correction (OBX-11 C) updates the Observation it corrects.
    """
    results = []
    order_code = order_time = filler = None
    index = 0
    for segment in message.children:
        if segment.name == "OBR":
            reps = er7.repetitions(segment, 4)
            order_code = codeable_concept(reps[0]) if reps else None
            order_time = date_time(er7.field(segment, 7, 1))
            filler = _filler(segment, authority)
        elif segment.name == "OBX":
            index += 1
            resource = observation(segment, index, subject, visit_ref, order_code, order_time)
            key = None
            if filler is not None:
                code = ((resource["code"].get("coding") or [{}])[0]).get("code", "")
                part = er7.field(segment, 4) or str(er7.set_id(segment, index))
                key = {**filler, "value": f"{filler['value']}/{code}/{part}"}
                resource["identifier"] = [key]
            results.append((index, resource, key))
    return results


def _filler(obr, authority: str) -> dict | None:
    """OBR-3 (filler order number, EI) as the base of its results' identifiers."""
    reps = er7.repetitions(obr, 3)
    number = er7.value(reps[0], 1) if reps else ""
    if not number:
        return None
    system = authority_system(er7.value(reps[0], 2), er7.value(reps[0], 3), er7.value(reps[0], 4))
    return {"type": {"coding": [{"system": V2_0203, "code": "FILL"}]},
            "system": system or LOCAL_SYSTEM + quote(authority, safe="-._~"), "value": number}


def _event_time(message) -> str:
    evn = er7.segments(message, "EVN")
    if not evn:
        return ""
    return date_time(er7.field(evn[0], 6, 1)) or date_time(er7.field(evn[0], 2, 1)) or ""


def _token(ident: dict) -> str:
    """``system|value`` as a token search value (\\ , | $ escaped, R4 search.html#escaping)."""

    def escape(text: str) -> str:
        for char in ("\\", ",", "|", "$"):
            text = text.replace(char, "\\" + char)
        return text

    return f"{escape(ident.get('system', ''))}|{escape(ident['value'])}"


def _conditional(resource_type: str, resource: dict, key: dict) -> write.Change:
    try:
        condition = parse(resource_type, [("identifier", _token(key))], strict=True)
    except SearchError as exc:
        raise Problem(102, f"identifier {key.get('value')!r} cannot be searched: {exc}", "", "AE") from None
    return write.Change(write.UPDATE, resource_type, id=resource["id"], resource=resource, condition=condition)


def _validate(changes: list[write.Change], sources: list[str]) -> None:
    for change, source in zip(changes, sources, strict=True):
        try:
            validate(change.resource, change.resource_type)
        except FHIRError as exc:
            where = ", ".join(exc.expression) or change.resource_type
            raise Problem(207, f"{source} gives an invalid {change.resource_type} ({where}): {exc.diagnostics}"[:250],
                          source, "AE") from None
        change.validated = True
