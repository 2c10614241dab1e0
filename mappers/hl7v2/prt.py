"""PRT (participation, pre-adopted from v2.9 by the CI-SIS profiles) -> the document's author (SB, AUT),
its recipients (RCT) and where to reply (REPLY): Practitioner by IDNPS/RPPS, Organization by FINESS. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from .changes import Changes, created_once
from .datatypes import contact_point
from .er7 import field as field_of
from .er7 import repetitions
from .participants import organization, practitioner

AUTHOR_ROLES = ("SB", "AUT", "AU", "AT", "OP")  # send by (CI-SIS), author, attending, ordering
RECIPIENT_ROLES = ("RCT", "CP", "RT")  # result copies to, consulting, referred to
_PATIENT_ID_TYPES = ("INS", "NH", "PI", "PT", "MR")


@dataclass
class Participation:
    authors: list[str] = field(default_factory=list)
    recipients: list[dict] = field(default_factory=list)  # References
    metadata: list[dict] = field(default_factory=list)  # REPLY and other roles, as sub-extensions
    people: dict[str, str] = field(default_factory=dict)  # person id -> Practitioner reference


def participations(prts: list[tuple[int, object]], authority: str, patient: str, out: Changes) -> Participation:
    """The participants of the PRT segments ``prts`` ((position, segment)); their resources go to ``out``."""
    found = Participation()
    for position, prt in prts:
        where = f"PRT^{position}"
        role = field_of(prt, 4, 1).upper()
        telecom = repetitions(prt, 15)
        person_reps = repetitions(prt, 5)
        person = person_reps[0] if person_reps else None
        refs = []
        if person is not None and field_of(prt, 5, 13).upper() in _PATIENT_ID_TYPES:
            refs.append({"reference": patient})
        elif person is not None:
            made = practitioner(person, authority, telecom)
            if made is not None:
                ref = out.add(created_once("Practitioner", *made), where)
                found.people[made[1]["value"]] = ref
                refs.append({"reference": ref})
        org_reps = repetitions(prt, 8)
        made_org = organization(org_reps[0], authority) if org_reps else None
        if made_org is not None:
            refs.append({"reference": out.add(created_once("Organization", *made_org), where)})
        if role in AUTHOR_ROLES:
            found.authors.extend(ref["reference"] for ref in refs)
        elif role in RECIPIENT_ROLES:
            found.recipients.extend(refs)
        if not refs or role not in AUTHOR_ROLES + RECIPIENT_ROLES:
            points = [p for p in (contact_point(x, "work") for x in telecom) if p]
            for point in points:
                found.metadata.append({"url": role or "PRT", "valueString": point["value"]})
    return found
