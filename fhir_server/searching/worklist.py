"""``GET Task/$worklist``: the on-call coordinator's worklist, one searchset Bundle.

Matches (``search.mode`` match): the open triage Tasks (``code`` ``codes.TRIAGE_ALERT``, ``status`` one of
``OPEN_STATUSES``), most urgent first (``codes.PRIORITY_ORDER``: stat, asap, urgent, routine; a Task
without a priority counts as routine), then oldest first (``authoredOn``, then last update, then id).
The oldest RELAIS_SEARCH_SNAPSHOT_MAX open Tasks are read, the triage alerts among them ranked (past
that cap, ``total`` is left out).
``owner`` and ``patient`` narrow them as the Task search parameters of those names do.

Includes (``search.mode`` include), after the matches, grouped Task by Task in the matches' order:
its Patient, its focus (and the resources its ``input`` values reference: the triggers a Task gathered),
then whom to call about the patient: a List built for the answer (``care_team.call_list``: not stored,
``urn:uuid`` fullUrl, ``subject`` the Patient, ``orderedBy`` priority, one entry per professional in the
order to call, its ``flag`` the care role), the professionals themselves with their telecom (and a
PractitionerRole's Practitioner), then the patient's active CareTeams. Each resource appears once.

Access: the operation is decided like a search of Task (``operation:worklist``, read permission); every
Task and every included resource goes through ``can_read``, and a List names only members the caller
may read. A patient-scoped caller therefore sees its own patient's Tasks and team, nothing else, and no
``total`` (it must not learn how many Tasks it cannot see).

Paging: ``_count`` (default RELAIS_DEFAULT_COUNT) Tasks a page; a worklist longer than a page is kept as
a snapshot of Task ids (as searches are), whose links (``[base]?_getpages=...``) rebuild each page's
includes when followed. For a caller who may not see every Task, the snapshot keeps only the Tasks it
may read, so its pages are full.
"""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import urlencode

from .. import codes
from ..errors import FHIRError, issue
from ..resources import is_supported
from ..search.query import Predicate, SearchQuery
from ..search.references import split_reference
from ..store.base import Store, StoredVersion
from . import care_team, paging
from .includes import MAX_INCLUDED
from .service import (
    PAGE_BUILDERS,
    Access,
    Settings,
    entry,
    outcome_entry,
    page_number,
    parse_query,
    read_refs,
    readable,
    run_query,
    snapshot,
    through_readable,
)

KIND = "worklist"
OPEN_STATUSES = ("requested", "received", "accepted", "ready", "in-progress", "on-hold")
FILTERS = ("owner", "patient")  # the operation's parameters that narrow the Tasks (Task search parameters)
IGNORED = frozenset({"_format", "_pretty"})
SORT = "authored-on,_lastUpdated,_id"  # oldest first within a priority
_PLAIN = SearchQuery("Task")

Ref = tuple[str, str]


def open_tasks(store: Store, access: Access, settings: Settings, pairs: list[tuple[str, str]],
               strict: bool = False) -> tuple[list[StoredVersion], bool, tuple[str, ...]]:  # fmt: skip
    """The open triage Tasks ``pairs`` (owner, patient) select, in worklist order, at most the snapshot cap;
    whether there were more; the warnings of the parameters the operation does not take.

    One store query, oldest first, then a stable sort by priority in memory: a query per priority would
    cost as many passes over the Tasks the store drives it by, and the open Tasks are read for the page
    anyway. The query names the open statuses, not the code, so that the store drives it from the open
    Tasks (few, however long the platform runs) rather than from every triage Task ever written; the code
    is tested on the Tasks read, as a ``system|code`` token search tests it.
    """
    filters, unknown = split_parameters(pairs)
    query = parse_query(store, "Task", [("status", ",".join(OPEN_STATUSES)), *filters, ("_sort", SORT)], settings,
                        strict)
    query = through_readable(store, access, query)
    cap = settings.snapshot_max
    ids = run_query(store, dataclasses.replace(query, count=cap + 1, offset=0, total="none")).ids
    tasks = [v for v in store.read_many("Task", ids[:cap]) if is_triage_alert(v.resource or {})] if ids else []
    tasks.sort(key=lambda v: priority_rank((v.resource or {}).get("priority")))
    warnings = tuple(f"Task/$worklist takes owner, patient and _count: {k} is ignored" for k in unknown)
    return tasks, len(ids) > cap, warnings


def is_triage_alert(task: dict) -> bool:
    """Whether ``task.code`` carries the triage alert coding (``codes.TRIAGE_ALERT``)."""
    coding = (task.get("code") or {}).get("coding") if isinstance(task.get("code"), dict) else None
    return any(isinstance(c, dict) and c.get("system") == codes.TRIAGE_ALERT["system"]
               and c.get("code") == codes.TRIAGE_ALERT["code"] for c in coding or ())  # fmt: skip


def priority_rank(priority: object) -> int:
    """0 for stat ... 3 for routine; a Task without a priority (or with an unknown one) is routine."""
    return codes.PRIORITY_ORDER.index(priority) if priority in codes.PRIORITY_ORDER else len(codes.PRIORITY_ORDER) - 1


def split_parameters(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """(the owner and patient pairs, with their modifiers and chains; the names of parameters not taken)."""
    filters = [(k, v) for k, v in pairs if k.split(":")[0].split(".")[0] in FILTERS]
    unknown = [k for k, _ in pairs if k.split(":")[0].split(".")[0] not in (*FILTERS, *IGNORED, "_count")]
    return filters, list(dict.fromkeys(unknown))


def worklist(store: Store, access: Access, settings: Settings, pairs: list[tuple[str, str]], *,
             strict: bool = False) -> dict:  # fmt: skip
    """The searchset Bundle of ``GET Task/$worklist?pairs`` as the actor may see it (module docstring)."""
    access.decide("operation:worklist", "Task", None)
    unknown = split_parameters(pairs)[1]
    if strict and unknown:
        raise FHIRError(400, f"Task/$worklist takes owner, patient and _count, not {unknown[0]}", code="invalid")
    count = next((v for k, v in pairs if k == "_count"), None)
    size = min(page_number(count, "_count", settings.default_count), settings.max_count)
    tasks, more, warnings = open_tasks(store, access, settings, pairs, strict)
    total = None if more else len(tasks)
    # A caller who may not see every Task pages through its own: full pages, not pages of what it may not see.
    tasks = tasks if access.sees_all("Task") else readable(access, tasks)
    ids = [v.id for v in tasks]
    if size and len(ids) > size:
        snap = snapshot(store, access, settings, KIND, "Task", [("Task", i) for i in ids], total, size,
                        paging.Shape())  # fmt: skip
        return worklist_page(store, access, settings, snap, 0, size, warnings)
    tasks = tasks if size else []
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None and access.sees_all("Task"):
        bundle["total"] = total
    url = f"{settings.base_url}/Task/$worklist"
    url = f"{url}?{urlencode(pairs)}" if pairs else url
    bundle["link"] = [{"relation": "self", "url": url}]
    bundle["entry"] = entries(store, access, settings.base_url, tasks, warnings)
    return bundle


def worklist_page(store: Store, access: Access, settings: Settings, snap: paging.Snapshot, offset: int, count: int,
                  warnings: tuple[str, ...] = ()) -> dict:  # fmt: skip
    """One page of a worklist snapshot (its first page, or a paging link followed later)."""
    access.decide("operation:worklist", "Task", None)  # again: the token that follows a link may be another
    tasks = readable(access, read_refs(store, paging.page(snap, offset, count)))
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if snap.total is not None and access.sees_all("Task"):
        bundle["total"] = snap.total
    bundle["link"] = paging.links(settings.base_url, snap, offset, count)
    bundle["entry"] = entries(store, access, settings.base_url, tasks, warnings)
    return bundle


PAGE_BUILDERS[KIND] = worklist_page


# --- the entries of one page -----------------------------------------------------------------------


def _ref(value: object) -> Ref | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return None
    rtype, rid = split_reference(reference)
    return (rtype, rid) if rtype and rid and is_supported(rtype) else None


def task_patient(task: dict) -> str | None:
    """The id of the Patient a Task is for."""
    ref = _ref(task.get("for"))
    return ref[1] if ref is not None and ref[0] == "Patient" else None


def triggers(task: dict) -> list[Ref]:
    """What fired the Task: its focus, then the resources its input values reference, once each."""
    refs = [_ref(task.get("focus"))]
    for value in task.get("input") or []:
        if isinstance(value, dict):
            refs.append(_ref(value.get("valueReference")))
    return list(dict.fromkeys(r for r in refs if r is not None))


def _read(store: Store, access: Access, refs: list[Ref]) -> dict[Ref, StoredVersion]:
    """The readable current versions of ``refs`` (one read per type)."""
    return {(v.resource_type, v.id): v for v in readable(access, read_refs(store, tuple(dict.fromkeys(refs))))}


def _care_teams(store: Store, access: Access, patient_ids: list[str]) -> dict[str, list[StoredVersion]]:
    """The active CareTeams of each patient the caller may read (one search for all of them)."""
    if not patient_ids:
        return {}
    query = SearchQuery("CareTeam", ((Predicate("patient", "reference", "in", ("Patient", tuple(patient_ids))),),
                                     (Predicate("status", "token", "eq", (None, "active")),)),
                        sort=(), count=MAX_INCLUDED, total="none")  # fmt: skip
    teams: dict[str, list[StoredVersion]] = {}
    ids = store.search(query).ids
    for v in readable(access, store.read_many("CareTeam", ids)) if ids else []:
        ref = _ref((v.resource or {}).get("subject"))
        if ref is not None and ref[0] == "Patient":
            teams.setdefault(ref[1], []).append(v)
    return teams


def entries(store: Store, access: Access, base: str, tasks: list[StoredVersion],
            warnings: tuple[str, ...] = ()) -> list[dict]:  # fmt: skip
    """The matches, then each Task's patient, triggers, call List, professionals and CareTeams."""
    out = [entry(base, t, "match", _PLAIN) for t in tasks]
    patient_ids = list(dict.fromkeys(p for t in tasks if (p := task_patient(t.resource or {})) is not None))
    patients = _read(store, access, [("Patient", p) for p in patient_ids])
    fired = _read(store, access, [r for t in tasks for r in triggers(t.resource or {})])
    teams = _care_teams(store, access, [p for p in patient_ids if ("Patient", p) in patients])
    today = time.strftime("%Y-%m-%d", time.gmtime())
    orders = {p: care_team.call_order(patients[("Patient", p)].resource or {},
                                      [v.resource or {} for v in teams.get(p, [])], today)
              for p in patient_ids if ("Patient", p) in patients}  # fmt: skip
    members = _read(store, access, [ref for order in orders.values() for ref, _ in order])
    # A PractitionerRole's Practitioner comes along: the person, with their own telecom.
    people = _read(store, access, [r for v in members.values() if v.resource_type == "PractitionerRole"
                                   if (r := _ref((v.resource or {}).get("practitioner"))) is not None])  # fmt: skip
    names = {ref: n for ref, v in members.items() if (n := care_team.display_name(v.resource or {}))}
    for ref, v in members.items():  # a PractitionerRole is called by its Practitioner's name
        person = _ref((v.resource or {}).get("practitioner")) if v.resource_type == "PractitionerRole" else None
        if person is not None and person in people and (n := care_team.display_name(people[person].resource or {})):
            names.setdefault(ref, n)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    seen: set[Ref] = {("Task", t.id) for t in tasks}
    included: list[dict] = []

    def include(v: StoredVersion | None) -> None:
        if v is not None and (v.resource_type, v.id) not in seen:
            seen.add((v.resource_type, v.id))
            included.append(entry(base, v, "include", _PLAIN))

    for task in tasks:
        resource = task.resource or {}
        pid = task_patient(resource)
        include(patients.get(("Patient", pid or "")))
        for ref in triggers(resource):
            include(fired.get(ref))
        if pid is None or pid not in orders or ("List", pid) in seen:
            continue
        seen.add(("List", pid))  # one List a patient, however many of their Tasks are listed
        order = [(ref, role) for ref, role in orders[pid] if ref in members]  # only members the caller may read
        call_list = care_team.call_list(pid, order, names, now)
        if access.can_read(call_list):
            included.append({"fullUrl": care_team.call_list_url(pid, order), "resource": call_list,
                             "search": {"mode": "include"}})  # fmt: skip
        for ref, _ in order:
            include(members[ref])
            practitioner = _ref((members[ref].resource or {}).get("practitioner"))
            if practitioner is not None:
                include(people.get(practitioner))
        for team in teams.get(pid, []):
            include(team)
    out.extend(included)
    if warnings:
        out.append(outcome_entry([issue("warning", "not-supported", w) for w in warnings]))
    return out
