"""What every message mapper of a care message receives: its segments in order, who and whom it is about."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server import write

from .changes import conditional
from .datatypes import V2_0203, authority_system, local_system, provisional_id
from .er7 import Header, repetitions, value
from .problems import Problem


@dataclass(frozen=True)
class Context:
    """A message being mapped: ``segments`` in message order (pre-adopted PRT included), its MSH,
    the sender's domain (``authority``: ids without an assigning authority belong to it), and the
    references of the Patient and Encounter its PID and PV1 gave."""

    head: Header
    segments: list
    authority: str
    patient: str
    encounter: str | None = None
    event_time: str = ""

    def named(self, *names: str) -> list[tuple[int, object]]:
        """(position among the segments of that name, 1-based, segment) of the segments named ``names``."""
        seen: dict[str, int] = {}
        found = []
        for segment in self.segments:
            seen[segment.name] = seen.get(segment.name, 0) + 1
            if segment.name in names:
                found.append((seen[segment.name], segment))
        return found

    def required(self, name: str) -> list[tuple[int, object]]:
        """The segments named ``name``, as ``named`` gives them; a message without one is refused (AR 100)."""
        found = self.named(name)
        if not found:
            article = "an" if name[0] in "AEFHILMNORSX" else "a"  # as the letter is spoken: "an RF1", "a TXA"
            raise Problem(100, f"{self.head.message_type} without {article} {name} segment", name, "AR")
        return found

    def created_id(self, resource_type: str, where: str) -> str:
        """A stable id for a resource this message creates (no business identifier): its sender, control
        id and place. A resend under the same control id is answered by the ingest, never mapped again."""
        return provisional_id(resource_type, f"{self.head.sender}|{self.head.control_id}|{where}")

    def keyed_or_created(self, resource_type: str, resource: dict, key: dict | None, where: str) -> write.Change:
        """``resource`` updated by its business identifier ``key`` (``changes.conditional``), or, without one,
        created under the id ``created_id`` gives it."""
        if key:
            return conditional(resource_type, resource, key)
        resource["id"] = self.created_id(resource_type, where)
        return write.Change(write.CREATE, resource_type, id=resource["id"], resource=resource)


def order_number(ei, kind: str, authority: str) -> dict | None:
    """An EI (placer or filler order number, appointment id) as an Identifier typed PLAC/FILL; None if empty."""
    number = value(ei, 1)
    if not number:
        return None
    system = authority_system(value(ei, 2), value(ei, 3), value(ei, 4))
    ident: dict = {"system": system or local_system(authority), "value": number}
    if kind:
        ident = {"type": {"coding": [{"system": V2_0203, "code": kind}]}, **ident}
    return ident


def first_order_number(segment, number: int, kind: str, authority: str) -> dict | None:
    """Field ``number`` of ``segment`` (an EI) as an Identifier, or None."""
    reps = repetitions(segment, number)
    return order_number(reps[0], kind, authority) if reps else None
