"""``Patient/[id]/$everything``: the patient's compartment (R4's, as access control sees it), as a searchset.

Each type's members are found by searching the parameters ``fhir_server.compartment`` names for it,
the same parameters that decide what a patient-scoped caller may read, then what the patient
points at (general practitioner, managing organization). Bounded by MAX_EVERYTHING; paged through
a snapshot when ``_count`` asks for less than the whole.
"""

from __future__ import annotations

from urllib.parse import urlencode

from .. import compartment
from ..errors import FHIRError
from ..resources import SUPPORTED_TYPES, is_supported
from ..search.dates import DateFormatError, date_range
from ..search.query import Predicate, SearchQuery
from ..store.base import Store, StoredVersion
from . import paging
from .includes import include_targets
from .service import Access, Settings, entry, page_number, readable, snapshot, snapshot_page

MAX_EVERYTHING = 5000


def _members(store: Store, rtype: str, patient_id: str, seen: set[tuple[str, str]]) -> list[str]:
    """Ids of ``rtype`` resources in the compartment of Patient/``patient_id``, not in ``seen`` (which grows)."""
    ids: list[str] = []
    for param in compartment.params(rtype):
        q = SearchQuery(rtype, ((Predicate(param, "reference", "eq", ("Patient", patient_id, None)),),),
                        count=MAX_EVERYTHING, total="none")  # fmt: skip
        new = [i for i in store.search(q).ids if (rtype, i) not in seen]
        seen.update((rtype, i) for i in new)
        ids.extend(new)
    return ids


def everything(store: Store, access: Access, settings: Settings, patient_id: str, *, types: list[str],
               since: str | None, count: str | None, offset: str | None,
               request_pairs: list[tuple[str, str]]) -> dict:  # fmt: skip
    """The searchset of ``Patient/patient_id/$everything`` (``types``: ``_type``, empty for all)."""
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
    wanted = types or list(SUPPORTED_TYPES)
    collected: list[StoredVersion] = [patient]
    seen = {("Patient", patient_id)}
    for rtype in wanted:
        if not is_supported(rtype):
            continue
        ids = _members(store, rtype, patient_id, seen)
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
