"""What the platform knows of a patient, read from the store for the pre-DMP (the I/O edge of building it).

Each read is one search of the store; the choices (latest vital sign per code, the care team in the
order the coordinator calls, what counts as recent) are pure functions below, tested on data alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fhir_server.codes import (
    CALL_ORDER,
    CARE_ROLE_SYSTEM,
    CARE_ROLES,
    SNOMED_CARE_ROLES,
    TRIAGE_ALERT,
)
from fhir_server.search.parser import parse
from fhir_server.store.base import Store

RECENT_DAYS = 30  # alerts and complaints older than this are not "recent"
VITAL_SIGNS_DAYS = 365  # a vital sign not measured for a year is not a recent one
_MAX = 500  # resources of one kind read for one patient: a pre-DMP is a summary, not an export
_MAX_VITALS = 2000  # the latest first: the last and previous measure of every code a patient is followed on
SNOMED = "http://snomed.info/sct"


@dataclass
class CareMember:
    """One professional of the care team: role code (CARE_ROLE_SYSTEM), its French label, the Practitioner."""

    role: str
    label: str
    practitioner: dict


@dataclass
class Facts:
    """Everything the document is made of, read at one moment (``now``)."""

    patient: dict
    now: str
    conditions: list[dict] = field(default_factory=list)
    medications: list[dict] = field(default_factory=list)
    allergies: list[dict] = field(default_factory=list)
    vitals: list[tuple[dict, dict | None]] = field(default_factory=list)  # (latest, previous) per code
    alerts: list[dict] = field(default_factory=list)
    complaints: list[dict] = field(default_factory=list)
    care_team: list[CareMember] = field(default_factory=list)


def _find(store: Store, resource_type: str, params: list[tuple[str, str]], most: int = _MAX) -> list[dict]:
    query = parse(resource_type, params, default_count=most, max_count=most)
    found = store.search(dataclasses.replace(query, count=most, total="none"))
    return [v.resource for v in store.read_many(resource_type, found.ids) if v.resource is not None and not v.deleted]


def gather(store: Store, patient: dict, now: datetime | None = None) -> Facts:
    """The facts of ``patient`` (a stored Patient) for its pre-DMP."""
    moment = now or datetime.now(UTC)
    pid = patient["id"]
    mine = [("patient", f"Patient/{pid}")]
    year_ago = (moment - timedelta(days=VITAL_SIGNS_DAYS)).strftime("%Y-%m-%d")
    observations = _find(store, "Observation", [*mine, ("category", "vital-signs"), ("date", f"ge{year_ago}"),
                                                ("_sort", "-date")], _MAX_VITALS)
    tasks = _find(store, "Task", [*mine, ("code", f"{TRIAGE_ALERT['system']}|{TRIAGE_ALERT['code']}"),
                                  ("_sort", "-authored-on")])
    teams = _find(store, "CareTeam", [*mine, ("status", "active")])
    wanted = practitioner_ids(teams, patient)
    practitioners = {p["id"]: p for p in (v.resource for v in store.read_many("Practitioner", wanted)) if p}
    since = moment - timedelta(days=RECENT_DAYS)
    complaints = [*_find(store, "Communication", [*mine, ("_sort", "-sent")]),
                  *_find(store, "QuestionnaireResponse", [*mine, ("_sort", "-authored")])]
    return Facts(
        patient=patient,
        now=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        conditions=sorted(_find(store, "Condition", [*mine, ("clinical-status", "active")]), key=_recorded),
        medications=sorted(_find(store, "MedicationRequest", [*mine, ("status", "active")]), key=_recorded),
        allergies=[a for a in _find(store, "AllergyIntolerance", mine) if _active_allergy(a)],
        vitals=latest_per_code(observations),
        alerts=recent(tasks, since, ("authoredOn", "lastModified")),
        complaints=recent(complaints, since, ("sent", "authored", "received")),
        care_team=care_team(teams, practitioners, patient),
    )


def _recorded(resource: dict) -> str:
    return str(resource.get("recordedDate") or resource.get("authoredOn") or resource.get("onsetDateTime") or "")


def _active_allergy(allergy: dict) -> bool:
    codes = [c.get("code") for c in ((allergy.get("clinicalStatus") or {}).get("coding") or [])]
    return not codes or "active" in codes


def code_key(resource: dict) -> str | None:
    """``system|code`` of a resource's first coding: what "the same measure" means."""
    for coding in (resource.get("code") or {}).get("coding") or []:
        if coding.get("code"):
            return f"{coding.get('system', '')}|{coding['code']}"
    return None


def effective(resource: dict) -> str:
    """When an Observation was made, as sortable text ('' when it does not say)."""
    return str(resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
               or resource.get("effectiveInstant") or resource.get("issued") or "")


def latest_per_code(observations: list[dict]) -> list[tuple[dict, dict | None]]:
    """For each code, its latest Observation and the one before it (for the trend); latest codes first."""
    by_code: dict[str, list[dict]] = {}
    for observation in observations:
        if observation.get("status") in ("entered-in-error", "cancelled"):
            continue
        key = code_key(observation)
        if key is not None:
            by_code.setdefault(key, []).append(observation)
    pairs = []
    for series in by_code.values():
        series.sort(key=lambda o: (effective(o), (o.get("meta") or {}).get("lastUpdated", "")), reverse=True)
        pairs.append((series[0], series[1] if len(series) > 1 else None))
    pairs.sort(key=lambda pair: effective(pair[0]), reverse=True)
    return pairs


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def recent(resources: list[dict], since: datetime, dates: tuple[str, ...]) -> list[dict]:
    """Those of ``resources`` dated (by the first of ``dates`` they have, else meta.lastUpdated) after ``since``,
    latest first. An open triage alert counts whatever its age."""
    kept = []
    for resource in resources:
        text = next((resource[d] for d in dates if isinstance(resource.get(d), str)),
                    (resource.get("meta") or {}).get("lastUpdated", ""))
        moment = _instant(text) if text else None
        still_open = resource.get("resourceType") == "Task" and resource.get("status") in ("requested", "in-progress")
        if still_open or (moment is not None and moment >= since):
            kept.append((text, resource))
    kept.sort(key=lambda pair: pair[0], reverse=True)
    return [resource for _, resource in kept]


def _local_id(reference: object, resource_type: str) -> str | None:
    text = (reference or {}).get("reference") if isinstance(reference, dict) else None
    if isinstance(text, str) and text.startswith(f"{resource_type}/"):
        return text.split("/")[1]
    return None


def practitioner_ids(teams: list[dict], patient: dict) -> list[str]:
    """The Practitioners the care teams and the patient's generalPractitioner name."""
    ids = [_local_id(p.get("member"), "Practitioner") for team in teams for p in team.get("participant") or []]
    ids += [_local_id(gp, "Practitioner") for gp in patient.get("generalPractitioner") or []]
    return list(dict.fromkeys(i for i in ids if i))


def role_of(participant: dict) -> str:
    """The care role (CARE_ROLE_SYSTEM code) of a CareTeam participant, read from ours or SNOMED's codes."""
    for concept in participant.get("role") or []:
        for coding in concept.get("coding") or []:
            if coding.get("system") == CARE_ROLE_SYSTEM and coding.get("code") in CARE_ROLES:
                return coding["code"]
            if coding.get("system") == SNOMED and coding.get("code") in SNOMED_CARE_ROLES:
                return SNOMED_CARE_ROLES[coding["code"]]
    return "other"


def care_team(teams: list[dict], practitioners: dict[str, dict], patient: dict) -> list[CareMember]:
    """The professionals around the patient in the order the coordinator calls them, each once; the
    ``generalPractitioner`` is the médecin traitant even when no CareTeam says so."""
    members: dict[str, CareMember] = {}
    for gp in patient.get("generalPractitioner") or []:
        pid = _local_id(gp, "Practitioner")
        if pid in practitioners:
            members[pid] = CareMember("general-practitioner", CARE_ROLES["general-practitioner"], practitioners[pid])
    for team in teams:
        for participant in team.get("participant") or []:
            pid = _local_id(participant.get("member"), "Practitioner")
            if pid in practitioners and pid not in members:
                role = role_of(participant)
                members[pid] = CareMember(role, CARE_ROLES[role], practitioners[pid])
    return sorted(members.values(), key=lambda m: CALL_ORDER.index(m.role))
