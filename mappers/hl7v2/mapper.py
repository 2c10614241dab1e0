"""One HL7 v2 message in, the changes to write and its ACK out. Pure: no store, no socket, no clock.

ADT (IHE PAM and PAM France 2.11, adt.py) gives a Patient, its Encounter and what the message's segments
say of them; every other message type accepted (``messages.MAPPERS``: ORU, MDM, orders, vaccinations,
pharmacy, problems, appointments, referrals) finds them (creating them once, never overwriting what ADT
stored), and gives what its own module maps. What carries a business identifier is a conditional update
on it, so a message sent again updates instead of duplicating. Billing (BAR, DFT) is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from hl7apy.exceptions import HL7apyException

from fhir_server import write
from fhir_server.errors import FHIRError
from fhir_server.resources import validate
from mappers import partner

from . import adt, er7, messages, preadopted
from .ack import acknowledge
from .changes import conditional as _conditional
from .changes import once
from .changes import token as _token
from .context import Context
from .datatypes import date_time, provisional_id
from .er7 import Header, Unreadable
from .pid import patient
from .problems import Problem, as_hl7
from .pv1 import encounter

MESSAGE_TYPES = {"ADT": adt.ADT_TRIGGERS, **{code: triggers for code, (triggers, _) in messages.MAPPERS.items()}}

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
        message, ordered = preadopted.read(text)
    except Unreadable as exc:
        return Mapped(header=er7.first_header(text), problem=Problem(exc.code, exc.text, exc.location, exc.ack))
    try:
        head = er7.header(message)
    except HL7apyException as exc:
        return Mapped(problem=Problem(100, f"unreadable MSH: {exc}"[:200], "MSH^1", "AR"))
    try:
        changes, sources = _changes(message, head, ordered)
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


def _changes(message, head: Header, ordered: list) -> tuple[list[write.Change], list[str]]:
    if head.version not in er7.SUPPORTED_VERSIONS:
        raise Problem(203, f"HL7 version {head.version or '(none)'!r} is not supported (2.3 to 2.8.2)",
                      "MSH^1^12", "AR")
    if head.message_code in messages.BILLING:
        raise Problem(200, "billing messages are not accepted", "MSH^1^9", "AR")
    triggers = MESSAGE_TYPES.get(head.message_code)
    if triggers is None:
        raise Problem(200, f"message type {head.message_type or '(none)'!r} is not supported"
                           f" ({', '.join(MESSAGE_TYPES)})", "MSH^1^9", "AR")
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
    if head.message_code == "ADT":
        return adt.changes(message, head.trigger, authority, _event_time(message))
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
    # ADT (IHE PAM) speaks for the patient and the visit: another message finds them, or creates them
    # once, and never overwrites what ADT stored (identity status, general practitioner, addresses, links)
    changes = [once(change) for change in changes]
    mapper = messages.MAPPERS.get(head.message_code)
    if mapper is not None:
        ctx = Context(head, ordered, authority, f"Patient/{patient_id}", visit_ref, event_time)
        found = mapper[1](ctx)
        changes.extend(found.changes)
        sources.extend(found.sources)
    return changes, sources


def _event_time(message) -> str:
    evn = er7.segments(message, "EVN")
    if not evn:
        return ""
    return date_time(er7.field(evn[0], 6, 1)) or date_time(er7.field(evn[0], 2, 1)) or ""


def _validate(changes: list[write.Change], sources: list[str]) -> None:
    for change, source in zip(changes, sources, strict=True):
        if change.resource is None:
            continue  # a patch: the write path validates what it gives
        try:
            validate(change.resource, change.resource_type)
        except FHIRError as exc:
            where = ", ".join(exc.expression) or change.resource_type
            raise Problem(207, f"{source} gives an invalid {change.resource_type} ({where}): {exc.diagnostics}"[:250],
                          source, "AE") from None
        change.validated = True
