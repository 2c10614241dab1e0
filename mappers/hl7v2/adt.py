"""ADT (IHE PAM and PAM France 2.11) -> the Patient, its visit and what the message says of them. Pure.

Events: A01 admit, A02 transfer, A03 discharge, A04 register, A05 pre-admit, A06/A07 change of
class, A08 update, A11/A12/A13 cancel admit/transfer/discharge, A21/A22 leave of absence and return,
A28/A31 add/update person, A38 cancel pre-admit (the Encounter's status: pv1.STATUS); A40 merge and
A47 identifier change (MRG). Segments: PID (pid.py, zfd.py), PD1 and ROL (careteam.py), NK1, PV1,
PV2, ZBE, AL1, DG1, PR1, IN1/IN2, OBX, ZFA. Every resource is a conditional update on a business
identifier (changes.py), so a resend or a correction updates what it wrote. The Patient, its
Encounter, a Practitioner and the CareTeam take over what the message leaves unchanged (carry.py:
HL7 v2 sends segments, not whole records); an allergy, a diagnosis, a procedure, a related person,
a coverage, an observation and a consent are whole in their segment and replaced by it.

A40: the prior Patient (MRG-1) becomes inactive with a ``replaced-by`` link to the survivor (PID),
which gets a ``replaces`` link back; the prior Patient's data stay where they are and are reached
from the survivor through that link (R4 Patient.link: "replaces ... should be consulted to retrieve
additional referenced information"; ``Patient/{survivor}/$everything`` follows it). An unknown prior
patient is recorded as an inactive Patient with its identifiers, so a late message about it is not lost.
"""

from __future__ import annotations

from . import careteam, mrg, pv1, rol, zbe, zfa, zfd
from . import carry as carrying
from .al1 import allergy
from .changes import Carry, Keyed, conditional, made_up, provisional, token
from .dg1 import condition
from .er7 import repetitions, segments
from .in1 import coverage
from .nk1 import related
from .obx import observation
from .pd1 import primary_care
from .pid import patient
from .pr1 import procedure
from .practitioner import practitioner, reference
from .problems import Problem

ADT_TRIGGERS = ("A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A12", "A13", "A21", "A22", "A28",
                "A31", "A38", "A40", "A47")
_FIRST = {"Patient": 0, "Encounter": 1}  # the order of the written list: the patient, its visit, the rest
_COMMUNITY = ("general-practitioner", "advanced-practice-nurse", "nurse", "pharmacist", "physiotherapist")
# ROL-3 of a visit's professional -> Encounter.participant.type (v3 ParticipationType)
_VISIT_ROLES = {"AT": ("ATND", "attender"), "AD": ("ADM", "admitter"), "RP": ("REF", "referrer"),
                "CP": ("CON", "consultant")}


class Changes:
    """The message's keyed changes, one per resource: a resource named twice (the same doctor in PV1-7
    and PV1-17) is one change, so one write never creates it twice."""

    def __init__(self) -> None:
        self._items: list[tuple[Keyed, str]] = []
        self._at: dict[str, int] = {}

    def put(self, resource: dict, key: dict | list[dict], source: str, carry: Carry | None = None) -> str:
        """Add ``resource`` (found by ``key``: any of them) and return the reference the message's
        resources use; a resource already named by one of its keys is that one."""
        rtype = resource["resourceType"]
        keys = key if isinstance(key, list) else [key]
        names = [f"{rtype}|{token(k)}" for k in keys]
        at = next((self._at[name] for name in names if name in self._at), None)
        if at is not None:  # what the first mention lacks (a phone in ROL-12), a later one gives
            earlier = self._items[at][0]
            earlier.resource = {**resource, **(earlier.resource or {})}
            return f"{rtype}/{earlier.id}"
        for name in names:
            self._at[name] = len(self._items)
        self._items.append((conditional(rtype, resource, key, carry), source))
        return f"{rtype}/{resource['id']}"

    def result(self) -> tuple[list, list[str]]:
        ordered = sorted(self._items, key=lambda item: _FIRST.get(item[0].resource_type, 2))
        return [change for change, _ in ordered], [source for _, source in ordered]


def changes(message, trigger: str, authority: str, event_time: str) -> tuple[list, list[str]]:
    """The changes of an ADT message (its PID present, its event one of ADT_TRIGGERS)."""
    out = Changes()
    if trigger in ("A40", "A47"):
        _with_mrg(out, message, trigger, authority)
        return out.result()
    _admission(out, message, trigger, authority, event_time)
    return out.result()


def _professional(out: Changes, authority: str, source: str):
    """An XCN -> a Reference to its Practitioner, found or created by RPPS/IDNPS (None without an id)."""

    def found(xcn, telecom=(), addresses=()) -> dict | None:
        made = practitioner(xcn, authority, telecom, addresses)
        if made is None:
            return None
        resource, keys = made
        return reference(out.put(resource, keys, source, carrying.kept), resource)

    return found


def _admission(out: Changes, message, trigger: str, authority: str, event_time: str) -> None:
    pid = segments(message, "PID")[0]
    person, key = patient(pid, authority)
    patient_key = token(key)
    patient_ref = f"Patient/{provisional('Patient', key)}"
    _extend(person, message, pid)
    visit_segments = segments(message, "PV1")
    pv1_at = message.children.index(visit_segments[0]) if visit_segments else len(message.children)
    team, removed, visit_roles = _care_team(out, message, authority, pv1_at)
    general = _unique(member["member"] for member in team if careteam.role_of(member) == "general-practitioner")
    if general:
        person["generalPractitioner"] = general
    contacts = []
    for index, nk1 in enumerate(segments(message, "NK1"), 1):
        made = related(nk1, index, patient_ref, patient_key, authority)
        if made is not None:
            resource, person_key, contact = made
            out.put(resource, person_key, f"NK1^{index}")
            contacts.append(contact)
    if contacts:
        person["contact"] = contacts
    out.put(person, key, "PID^1", carrying.patient)
    visit_ref, visit_key = _visit(out, message, trigger, authority, event_time, patient_ref, visit_roles)
    scope_key = visit_key or patient_key
    for index, al1 in enumerate(segments(message, "AL1"), 1):
        made = allergy(al1, index, patient_ref, patient_key)
        if made:
            out.put(made[0], made[1], f"AL1^{index}")
    for index, dg1 in enumerate(segments(message, "DG1"), 1):
        made = condition(dg1, index, patient_ref, visit_ref, scope_key, authority,
                         _professional(out, authority, f"DG1^{index}^16"))
        if made:
            out.put(made[0], made[1], f"DG1^{index}")
    for index, pr1 in enumerate(segments(message, "PR1"), 1):
        made = procedure(pr1, index, patient_ref, visit_ref, scope_key, authority,
                         _professional(out, authority, f"PR1^{index}"))
        if made:
            out.put(made[0], made[1], f"PR1^{index}")
    _insurance(out, message, patient_ref, patient_key, authority)
    _observations(out, message, patient_ref, visit_ref, scope_key, event_time)
    if team or removed:
        resource, team_key, merge = careteam.care_team(patient_ref, patient_key, team, removed)
        out.put(resource, team_key, "ROL^1" if segments(message, "ROL") else "PD1^1", merge)
    for zfa_segment in segments(message, "ZFA")[:1]:
        for resource, consent_key, source in zfa.consents(zfa_segment, patient_ref, patient_key):
            out.put(resource, consent_key, source)


def _extend(person: dict, message, pid) -> None:
    """PID-32 and ZFD (identity reliability), ZFA (DMP status): extensions of the Patient."""
    zfds = segments(message, "ZFD")
    found = [zfd.reliability(pid, zfds[0] if zfds else None)]
    found += [zfa.dmp_status(z) for z in segments(message, "ZFA")[:1]]
    for extension in found:
        if extension is not None:
            person.setdefault("extension", []).append(extension)


def _unique(references) -> list[dict]:
    seen, found = set(), []
    for item in references:
        if item["reference"] not in seen:
            seen.add(item["reference"])
            found.append(item)
    return found


def _care_team(out: Changes, message, authority: str, pv1_at: int) -> tuple[list[dict], list[dict], list]:
    """(participants, participants ROL-2 DE removes, the visit's ROL segments) from PD1-4 and ROL.

    A ROL before PV1 is the patient's (ADT's PATIENT group), after it the visit's; a community role
    (médecin traitant, nurse...) goes to the care team wherever it stands.
    """
    members: list[dict] = []
    removed: list[dict] = []
    visit: list = []
    for index, pd1 in enumerate(segments(message, "PD1"), 1):
        professional = _professional(out, authority, f"PD1^{index}^4")
        for xcn in primary_care(pd1):
            member = professional(xcn)
            if member is not None:
                members.append(careteam.participant("general-practitioner", member))
    for index, segment in enumerate(segments(message, "ROL"), 1):
        role = rol.care_role(segment)
        after_visit = message.children.index(segment) > pv1_at
        if after_visit and role not in _COMMUNITY:
            visit.append((index, segment))
            continue
        xcn = rol.person(segment)
        if xcn is None:
            continue
        professional = _professional(out, authority, f"ROL^{index}")
        member = professional(xcn, repetitions(segment, 12), repetitions(segment, 11))
        if member is None:
            continue
        item = careteam.participant(role, member)
        when = rol.period(segment, index)
        if when:
            item["period"] = when
        (removed if rol.action(segment) == "DE" else members).append(item)
    unique: dict[tuple, dict] = {}
    for item in members:
        unique.setdefault((careteam.role_of(item), item["member"]["reference"]), item)
    return list(unique.values()), removed, visit


def _visit(out: Changes, message, trigger: str, authority: str, event_time: str, patient_ref: str,
           visit_roles: list) -> tuple[str | None, str | None]:
    """The Encounter of the first PV1 (with PV2, ZBE and the visit's ROL): (its reference, its key token)."""
    pv1s = segments(message, "PV1")
    if not pv1s:
        return None, None
    found = pv1.encounter(pv1s[0], trigger, authority, patient_ref, event_time)
    if found is None:
        return None, None
    visit, visit_key = found
    professional = _professional(out, authority, "PV1^1")
    participants = pv1.participants(pv1s[0], professional)
    for index, segment in visit_roles:
        xcn = rol.person(segment)
        member = _professional(out, authority, f"ROL^{index}")(xcn) if xcn is not None else None
        if member is not None:
            code, display = _VISIT_ROLES.get(rol.role_code(segment), ("PART", "Participation"))
            participants.append({"type": [{"coding": [{"system": pv1.PARTICIPATION_TYPE, "code": code,
                                                       "display": display}]}], "individual": member})
    if participants:
        visit["participant"] = participants
    for pv2 in segments(message, "PV2")[:1]:
        planned = pv1.planned(pv2)
        if planned:
            visit["extension"] = planned
    zbes = segments(message, "ZBE")
    movement = zbe.movement(zbes[0]) if zbes else pv1.point_of_care(pv1s[0], trigger, event_time)
    pv1.finish(visit, [movement[0]] if movement and movement[1] not in ("CANCEL", "UNDO") else [])
    ref = out.put(visit, visit_key, "PV1^1", pv1.carry(trigger, movement))
    return ref, token(visit_key)


def _insurance(out: Changes, message, patient_ref: str, patient_key: str, authority: str) -> None:
    """IN1, each with the IN2 that follows it."""
    index = 0
    children = list(message.children)
    for at, segment in enumerate(children):
        if segment.name != "IN1":
            continue
        index += 1
        following = children[at + 1] if at + 1 < len(children) else None
        in2 = following if following is not None and following.name == "IN2" else None
        made = coverage(segment, in2, index, patient_ref, patient_key, authority)
        if made:
            out.put(made[0], made[1], f"IN1^{index}")


def _observations(out: Changes, message, patient_ref: str, visit_ref: str | None, scope_key: str,
                  event_time: str) -> None:
    """OBX in an ADT (height, weight...): an Observation found again by its visit (else patient),
    code and time, so a resend or an A08 updates it."""
    for index, segment in enumerate(segments(message, "OBX"), 1):
        resource = observation(segment, index, patient_ref, visit_ref, None, event_time or None)
        code = ((resource["code"].get("coding") or [{}])[0])
        key = made_up("adt-observation", scope_key, code.get("system", ""), code.get("code", ""),
                      resource.get("effectiveDateTime", ""))
        resource["identifier"] = [key]
        out.put(resource, key, f"OBX^{index}")


def _with_mrg(out: Changes, message, trigger: str, authority: str) -> None:
    """A40 (merge) and A47 (identifier change): each PID with the MRG after it."""
    children = list(message.children)
    pids = [at for at, segment in enumerate(children) if segment.name == "PID"]
    for number, at in enumerate(pids, 1):
        following = children[at + 1: pids[number] if number < len(pids) else len(children)]
        merged = next((segment for segment in following if segment.name == "MRG"), None)
        if merged is None:
            raise Problem(100, f"ADT^{trigger} without an MRG segment after PID {number}", f"PID^{number}", "AR")
        person, key = patient(children[at], authority)
        _extend(person, message, children[at])
        prior, prior_key = mrg.prior(merged, number, authority)
        if trigger == "A47":
            _renamed(out, person, key, prior, prior_key, number)
        else:
            _merged(out, person, key, prior, prior_key, number)


def _merged(out: Changes, person: dict, key: dict, prior: list[dict], prior_key: dict, number: int) -> None:
    if mrg.same(prior_key, key):
        raise Problem(102, "MRG-1 names the surviving patient (PID-3) itself", f"MRG^{number}^1")
    survivor_ref = f"Patient/{provisional('Patient', key)}"
    prior_ref = f"Patient/{provisional('Patient', prior_key)}"
    person["link"] = [{"other": {"reference": prior_ref}, "type": "replaces"}]
    out.put(person, key, f"PID^{number}", carrying.patient)
    retired = {"resourceType": "Patient", "identifier": prior, "active": False,
               "link": [{"other": {"reference": survivor_ref}, "type": "replaced-by"}]}
    out.put(retired, prior_key, f"MRG^{number}", _retire)


def _retire(stored: dict, new: dict) -> dict:
    """The merged-away Patient keeps its data, is inactive, and is replaced by the survivor alone."""
    result = carrying.kept(stored, new)
    result["link"] = carrying.links(stored.get("link") or [], new["link"], dropping="replaced-by")
    return result


def _renamed(out: Changes, person: dict, key: dict, prior: list[dict], prior_key: dict, number: int) -> None:
    """A47: the Patient found by its prior identifier (or already by its new one) takes PID-3's."""

    def rename(stored: dict, new: dict) -> dict:
        return carrying.patient({**stored, "identifier": mrg.without(stored.get("identifier") or [], prior)}, new)

    keys = [key] if mrg.same(prior_key, key) else [key, prior_key]
    out.put(person, keys, f"PID^{number}", rename)
