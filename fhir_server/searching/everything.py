"""``Patient/[id]/$everything``: the patient's compartment (R4's, as access control sees it), as a searchset.

Each type's members are found by searching the parameters ``fhir_server.compartment`` names for it,
the same parameters that decide what a patient-scoped caller may read, then what the patient
points at (general practitioner, managing organization). Bounded by MAX_EVERYTHING; paged through
a snapshot when ``_count`` asks for less than the whole.

A patient that replaces others (Patient.link ``replaces``, an HL7 v2 A40 merge) answers with their
compartments too.

AuditEvents are left out unless ``_type`` names AuditEvent: they record access to the record, not
care, and each call would otherwise add its own audit to the next answer.

``start`` and ``end`` (R4: care dates, not record dates) keep the compartment members whose clinical
date overlaps [start, end]: ``CLINICAL_DATE`` names the date search parameter read per type (the
R4 ``date`` parameter where the type has one, else the one its care happened at). Members of a type
with a clinical date that lack one are left out; types with none (Coverage, Group, RelatedPerson...),
the patient and what the patient points at are always kept.
"""

from __future__ import annotations

from urllib.parse import urlencode

from .. import compartment
from ..errors import FHIRError
from ..resources import SUPPORTED_TYPES, is_supported
from ..search.dates import DateFormatError, date_range
from ..search.query import Predicate, SearchQuery
from ..search.registry import get_registry
from ..store.base import Store, StoredVersion
from . import paging
from .includes import include_targets
from .service import Access, Settings, entry, page_number, readable, snapshot, snapshot_page

MAX_EVERYTHING = 5000
MAX_MERGED = 20  # patients merged into one, followed by $everything

# Left out unless _type asks for them.
NOT_BY_DEFAULT = frozenset({"AuditEvent"})

# The clinical date of compartment types without an R4 ``date`` parameter, or whose ``date`` is not the
# care date (MedicationRequest's is the dosage timing). Types absent here use ``date`` when they have it.
CLINICAL_DATE = {
    "Account": "period", "Basic": "created", "ChargeItem": "occurrence", "Claim": "created",
    "ClaimResponse": "created", "Communication": "sent", "CommunicationRequest": "occurrence",
    "Condition": "onset-date", "CoverageEligibilityRequest": "created", "CoverageEligibilityResponse": "created",
    "DetectedIssue": "identified", "DeviceRequest": "event-date", "DocumentManifest": "created",
    "ExplanationOfBenefit": "created", "Goal": "start-date", "ImagingStudy": "started", "Media": "created",
    "MedicationAdministration": "effective-time", "MedicationDispense": "whenhandedover",
    "MedicationRequest": "authoredon", "MedicationStatement": "effective", "NutritionOrder": "datetime",
    "Provenance": "recorded", "QuestionnaireResponse": "authored", "RequestGroup": "authored",
    "ServiceRequest": "occurrence", "Specimen": "collected", "Task": "period", "VisionPrescription": "datewritten",
}


def clinical_date(resource_type: str) -> str | None:
    """The date search parameter ``start``/``end`` filter ``resource_type`` on (None: not filtered)."""
    name = CLINICAL_DATE.get(resource_type)
    if name is None and resource_type not in ("Patient", "Person", "RelatedPerson"):
        name = "date"
    param = get_registry().get(resource_type, name) if name else None
    return name if param is not None and param.type == "date" else None


def _period(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    """(low, high) epoch seconds of [start, end], each bound at its precision; 400 for a malformed date."""
    bounds: list[float | None] = []
    for name, value, edge in (("start", start, 0), ("end", end, 1)):
        if not value:
            bounds.append(None)
            continue
        try:
            bounds.append(date_range(value)[edge])
        except DateFormatError:
            raise FHIRError(400, f"{name}: {value!r} is not a FHIR date", code="invalid") from None
    return bounds[0], bounds[1]


def _dated(rtype: str, period: tuple[float | None, float | None]) -> tuple[tuple[Predicate, ...], ...]:
    """The AND clauses keeping ``rtype`` members whose clinical date overlaps ``period``."""
    low, high = period
    name = clinical_date(rtype)
    if name is None or (low is None and high is None):
        return ()
    clauses = []
    if low is not None:  # ge: the value ends at or after start
        clauses.append((Predicate(name, "date", "ge", (low, low)),))
    if high is not None:  # le: the value begins at or before end
        clauses.append((Predicate(name, "date", "le", (high, high)),))
    return tuple(clauses)


def _members(store: Store, rtype: str, patient_id: str, seen: set[tuple[str, str]],
             dated: tuple[tuple[Predicate, ...], ...] = ()) -> list[str]:  # fmt: skip
    """Ids of ``rtype`` resources in the compartment of Patient/``patient_id``, not in ``seen`` (which grows)."""
    ids: list[str] = []
    for param in compartment.params(rtype):
        q = SearchQuery(rtype, ((Predicate(param, "reference", "eq", ("Patient", patient_id, None)),), *dated),
                        count=MAX_EVERYTHING, total="none")  # fmt: skip
        new = [i for i in store.search(q).ids if (rtype, i) not in seen]
        seen.update((rtype, i) for i in new)
        ids.extend(new)
    return ids


def _replaced(store: Store, patient: StoredVersion) -> list[StoredVersion]:
    """The patients ``patient`` replaces (Patient.link type ``replaces``, a merge), and those they
    replace: R4 says such a patient "should be consulted to retrieve additional referenced information",
    so their compartments are the survivor's too. Bounded by MAX_MERGED."""
    found: list[StoredVersion] = []
    seen = {patient.id}
    pending = [patient]
    while pending and len(found) < MAX_MERGED:
        current = pending.pop(0)
        for link in (current.resource or {}).get("link") or []:
            reference = (link.get("other") or {}).get("reference") or ""
            kind, _, rid = reference.partition("/")
            if link.get("type") != "replaces" or kind != "Patient" or not rid or rid in seen:
                continue
            seen.add(rid)
            stored = store.read("Patient", rid)
            if stored is not None and not stored.deleted and stored.resource is not None:
                found.append(stored)
                pending.append(stored)
    return found[:MAX_MERGED]


def everything(store: Store, access: Access, settings: Settings, patient_id: str, *, types: list[str],
               since: str | None, count: str | None, offset: str | None,
               request_pairs: list[tuple[str, str]], start: str | None = None,
               end: str | None = None) -> dict:  # fmt: skip
    """The searchset of ``Patient/patient_id/$everything`` (``types``: ``_type``, empty for all but
    NOT_BY_DEFAULT; ``start``/``end``: the care period, see the module's note)."""
    patient = store.read("Patient", patient_id)
    if patient is None or patient.deleted or patient.resource is None:
        raise FHIRError(404, f"Patient/{patient_id} is not known", code="not-found")
    access.decide("operation:everything", "Patient", patient.resource)
    if not access.can_read(patient.resource):
        raise FHIRError(404, f"Patient/{patient_id} is not known", code="not-found")
    since_ts = None
    if since:
        try:
            since_ts = date_range(since)[0]
        except DateFormatError:
            raise FHIRError(400, f"_since: {since!r} is not a FHIR instant", code="invalid") from None
    period = _period(start, end)
    wanted = types or [t for t in SUPPORTED_TYPES if t not in NOT_BY_DEFAULT]
    replaced = _replaced(store, patient)
    collected: list[StoredVersion] = [patient, *replaced]
    seen = {("Patient", patient_id), *(("Patient", p.id) for p in replaced)}
    for member_of in (patient_id, *(p.id for p in replaced)):
        for rtype in wanted:
            if not is_supported(rtype):
                continue
            ids = _members(store, rtype, member_of, seen, _dated(rtype, period))
            if ids:
                collected.extend(store.read_many(rtype, ids))
    # What the patient itself points at (general practitioner, managing organization, links).
    for rtype, rid in include_targets(patient.resource, "*"):
        if (rtype, rid) not in seen and is_supported(rtype) and (rtype in wanted or not types):
            seen.add((rtype, rid))
            collected.extend(store.read_many(rtype, [rid]))
    if since_ts is not None:
        collected = [v for v in collected if date_range(v.last_updated)[1] >= since_ts]
    collected = readable(access, collected)[:MAX_EVERYTHING]
    # The whole compartment on one page unless _count asks for less; then pages of one snapshot,
    # the patient first, as in searches.
    size = page_number(count, "_count", len(collected) or 1)
    start = page_number(offset, "_offset", 0)
    refs = [(v.resource_type, v.id) for v in collected]
    if size and (len(refs) > size or start > 0):
        snap = snapshot(store, access, settings, "everything", "Patient", refs[: settings.snapshot_max], len(refs),
                        min(size, settings.max_count), paging.Shape(), target=patient_id)  # fmt: skip
        return snapshot_page(store, access, settings, snap, start, snap.count)
    base = f"{settings.base_url}/Patient/{patient_id}/$everything"
    url = f"{base}?{urlencode(request_pairs)}" if request_pairs else base
    plain = SearchQuery("Patient")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(collected),
        "link": [{"relation": "self", "url": url}],
        "entry": [
            entry(settings.base_url, v, "match" if v.resource_type == "Patient" and v.id == patient_id else "include",
                  plain)
            for v in (collected if size else [])
        ],
    }
