"""Triage as outbox work: each stored version a rule's trigger matches is triaged once, its alerts written
through the write path as the internal actor ``relais-triage``.

Two handlers. ``queue`` (kind ``resource``, the events every write leaves) keeps the versions some rule's
trigger matches, and the writes of triage Tasks (to end their Flags), as ``triage`` events of their own:
one a version, so one that keeps failing holds back no other. ``handle`` (kind ``triage``) evaluates the
rules and writes the alerts.

Exactly once. Events come at least once (a process that dies mid-batch leaves its lease to expire and the
batch is run again). Every version that fires a rule is named in its Task's identifiers
(``alerts.TRIGGER_SYSTEM``), and the write that adds it checks, inside its store transaction, that no Task
names it yet and that the open Task it updates (or the absence of one) is still what it read: otherwise it
stores nothing and starts again. On SQLite, where write transactions are serialised, this is exact across
processes; on MongoDB two processes may race as conditional creates do (README, Batch and transaction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fhir_server import write
from fhir_server.actor import SERVER, Actor
from fhir_server.codes import TRIAGE_ALERT
from fhir_server.errors import FHIRError
from fhir_server.ids import new_id
from fhir_server.search.parser import parse
from fhir_server.store.base import StoredVersion

from . import alerts
from .engine import Firing, evaluate, triggered
from .facts import StoreFacts
from .measures import patient_of
from .model import RuleSet

log = logging.getLogger("relais.triage")

OUTBOX_KIND = "triage"
ACTOR = "relais-triage"
# What the triage engine may do when it registers itself (relais clients internal relais-triage re-scopes it).
DEFAULT_SCOPES = ("system/Task.cru", "system/Flag.cru", "system/Organization.cru", "system/Patient.rs",
                  "system/Observation.rs", "system/Goal.rs", "system/Communication.rs",
                  "system/QuestionnaireResponse.rs")
OWNER_DISPLAY = "Équipe de coordination d'astreinte"
FAILURE_RULE = "triage-failure"  # reasonCode of the Task that says triage gave up on a version
OWNER_TYPES = ("Organization", "CareTeam", "HealthcareService")  # what triage creates when the owner is missing
_WRITES = ("POST", "PUT", "PATCH")
_ATTEMPTS = 20


@dataclass(frozen=True)
class Settings:
    """What triage needs of the app: its rules, the on-call team its Tasks go to, whether auth is on."""

    rules: RuleSet
    owner: str  # a reference (CareTeam/..., Organization/...)
    auth: bool
    server_base: str

    @property
    def owner_reference(self) -> dict:
        return {"reference": self.owner, "display": OWNER_DISPLAY}


class AlreadyTriaged(Exception):
    """Inside the write's transaction: a Task already names this version for this rule."""


# --- kind "resource": which versions to triage -------------------------------------------------------

def queue(settings: Settings, store: Any, payloads: list[dict]) -> None:
    """Handler of ``resource`` events: a ``triage`` event for each version some rule's trigger matches, and
    for each write of a triage Task (its Flag ends with it)."""
    wanted = []
    for payload in payloads:
        rtype, method = payload.get("type"), payload.get("method")
        if rtype == "Task":
            if method == "DELETE" or _closed_triage_task(store, payload):
                wanted.append(_event(payload, ()))
            continue
        if method not in _WRITES or not settings.rules.for_type(rtype):
            continue
        stored = store.read(rtype, payload["id"], payload["version"])
        if stored is None or stored.resource is None:
            continue
        ids = triggered(settings.rules, stored.resource)
        if ids:
            wanted.append(_event(payload, ids))
    if wanted:
        # As the rest-hook deliveries queued from the same events: those are done only after this commit.
        with store.transaction(durable=False) as txn:
            for event in wanted:
                txn.outbox_append(event)


def _event(payload: dict, rule_ids: tuple[str, ...]) -> dict:
    return {"kind": OUTBOX_KIND, "type": payload["type"], "id": payload["id"], "version": payload["version"],
            "method": payload.get("method"), "rules": list(rule_ids)}


def _closed_triage_task(store: Any, payload: dict) -> bool:
    stored = store.read("Task", payload["id"], payload["version"])
    task = stored.resource if stored is not None else None
    return alerts.is_triage_task(task) and task.get("status") in alerts.CLOSED_STATUSES


# --- kind "triage": evaluate and write -----------------------------------------------------------------

def handle(settings: Settings, store: Any, payloads: list[dict]) -> None:
    """Handler of ``triage`` events: evaluate the rules on each version, write or update the alerts."""
    actor = triage_actor(store)
    facts = StoreFacts(store)
    for payload in payloads:
        if payload.get("type") == "Task":
            end_flags(settings, store, actor, payload["id"])
            continue
        stored = store.read(payload["type"], payload["id"], payload["version"])
        if stored is None or stored.resource is None:
            continue
        only = tuple(payload.get("rules") or ()) or None
        for firing in evaluate(settings.rules, stored.resource, facts, only=only):
            raise_alert(settings, store, actor, firing, stored)


def triage_actor(store: Any) -> Actor:
    """The registered internal actor ``relais-triage`` (registered with DEFAULT_SCOPES on first use)."""
    import auth
    from auth.clients import ClientRegistry

    try:
        return auth.internal_actor(store, ACTOR)
    except LookupError:
        registry = ClientRegistry(store)
        if registry.get(ACTOR) is not None:  # a client of that id that is not internal: refuse to act as it
            raise
        log.warning("registering the internal actor %s with scopes %s", ACTOR, " ".join(DEFAULT_SCOPES))
        registry.add_internal(ACTOR, list(DEFAULT_SCOPES))
        return auth.internal_actor(store, ACTOR)


def _now() -> str:
    return write.now_instant()


def _open_task_query(rule_id: str, patient: str):
    return parse("Task", [("identifier", f"{alerts.RULE_SYSTEM}|{rule_id}"), ("patient", f"Patient/{patient}"),
                          ("status", ",".join(alerts.OPEN_STATUSES)), ("_sort", "_lastUpdated")], strict=True)


def _trigger_query(rule_id: str, reference: str):
    value = alerts.trigger_key(rule_id, reference).replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|")
    return parse("Task", [("identifier", f"{alerts.TRIGGER_SYSTEM}|{value}")], strict=True)


def _check(actor: Actor, auth_on: bool, interaction: str, resource: dict) -> None:
    if not auth_on:
        return
    import auth

    why = auth.refusal(actor, interaction, resource["resourceType"], resource)
    if why is not None:
        raise PermissionError(f"{ACTOR} may not {interaction} {resource['resourceType']}: {why}")


def raise_alert(settings: Settings, store: Any, actor: Actor, firing: Firing, trigger: StoredVersion) -> str | None:
    """Write the alert of ``firing``: a new Task and its Flag, or the open Task of the rule for the patient
    updated. Returns the Task's id, or None when this version was already triaged by this rule."""
    reference = f"{trigger.resource_type}/{trigger.id}/_history/{trigger.version}"
    focus = f"{trigger.resource_type}/{trigger.id}"
    rule_id = firing.rule.id
    already = _trigger_query(rule_id, reference)
    open_query = _open_task_query(rule_id, firing.patient)
    for _ in range(_ATTEMPTS):
        at = _now()
        open_ids = store.search(open_query).ids
        if open_ids:
            current = store.read("Task", open_ids[0])
            if current is None or current.resource is None:
                continue
            task_id = current.id
            task = alerts.updated_task(current.resource, firing, reference, focus, at)
            _check(actor, settings.auth, "update", task)
            changes = [write.Change(write.UPDATE, "Task", id=task_id, resource=task, if_match=current.version)]
        else:
            task_id = new_id()
            patient = store.read("Patient", firing.patient)
            code = alerts.triage_class(firing.rule.rule_class, patient.resource if patient else None)
            task = alerts.new_task(firing, task_id, reference, focus, settings.owner_reference, code, at)
            flag = alerts.new_flag(firing, task_id, at)
            _check(actor, settings.auth, "create", task)
            _check(actor, settings.auth, "create", flag)
            owner = _owner_changes(settings, store)
            for change in owner:
                _check(actor, settings.auth, "update", change.resource)
            task.pop("id")
            changes = [*owner,
                       write.Change(write.CREATE, "Task", id=task_id, resource=task),
                       write.Change(write.CREATE, "Flag", resource=flag)]

        def guard(txn, seen=tuple(open_ids[:1])) -> None:
            if txn.search(already).ids:
                raise AlreadyTriaged
            if tuple(txn.search(open_query).ids[:1]) != seen:
                raise write.Stale  # the open Task changed since it was read

        try:
            # dangling: the owner may be a team no resource describes yet; an alert must not wait for it
            results = write.write(store, changes, actor, guard=guard, dangling=True)
        except AlreadyTriaged:
            return None
        except write.Stale:
            continue
        except FHIRError as exc:
            if exc.status == 412:  # the open Task changed between its read and the write
                continue
            raise
        _audit(settings, store, actor, results)
        return task_id
    raise RuntimeError(f"rule {rule_id}: the open Task of Patient/{firing.patient} kept changing")


def failed(settings: Settings, store: Any, payload: dict, error: str) -> str | None:
    """Dead-letter handler of ``triage`` events: triage gave up on a version after every retry, so the
    coordinator gets a Task saying so, to look at it by hand (a dangerous measure must not go unseen).
    Written by the server itself: the failure may be that relais-triage lost its scopes. Returns its id."""
    if payload.get("type") == "Task":
        return None  # ending a Flag failed: the Flag stays active, visible, until ended by hand
    stored = store.read(payload["type"], payload["id"], payload["version"])
    patient = patient_of(stored.resource) if stored is not None and stored.resource else None
    at = _now()
    reference = f"{payload['type']}/{payload['id']}/_history/{payload['version']}"
    task = {
        "resourceType": "Task",
        "identifier": [{"system": alerts.RULE_SYSTEM, "value": FAILURE_RULE}],
        "status": "requested", "intent": "order", "priority": "urgent",
        "code": {"coding": [dict(TRIAGE_ALERT)], "text": TRIAGE_ALERT["display"]},
        "description": f"Le triage automatique de {reference} a échoué : vérifier cette donnée à la main.",
        "focus": {"reference": f"{payload['type']}/{payload['id']}"},
        "authoredOn": at, "lastModified": at, "requester": dict(alerts.REQUESTER),
        "owner": settings.owner_reference,
        "reasonCode": {"coding": [{"system": alerts.RULE_SYSTEM, "code": FAILURE_RULE}],
                       "text": "Échec du triage automatique"},
        "note": [{"text": alerts.DISCLAIMER}, {"text": f"Erreur : {error[:500]}"}],
        "input": [{"type": {"coding": [{"system": alerts.INPUT_SYSTEM, "code": "trigger"}], "text": "Déclencheur"},
                   "valueReference": {"reference": reference}}],
    }
    if patient is not None:
        task["for"] = {"reference": f"Patient/{patient}"}
    log.error("triage of %s failed for good (%s): Task written for the coordinator", reference, error)
    [result] = write.write(store, [write.Change(write.CREATE, "Task", resource=task)], SERVER, dangling=True)
    return result.id


def _owner_changes(settings: Settings, store: Any) -> list[write.Change]:
    """The on-call team, created the first time an alert names it: a Task whose owner names nothing could not
    be updated by a coordinator (dangling references are refused)."""
    owner_type, _, owner_id = settings.owner.partition("/")
    if owner_type not in OWNER_TYPES or store.read(owner_type, owner_id) is not None:
        return []
    team = {"resourceType": owner_type, "id": owner_id, "name": OWNER_DISPLAY}
    if owner_type == "CareTeam":
        team["status"] = "active"
    return [write.Change(write.UPDATE, owner_type, id=owner_id, resource=team)]


def end_flags(settings: Settings, store: Any, actor: Actor, task_id: str) -> int:
    """End the active Flags of a triage Task that is closed (or deleted); how many were ended."""
    task = store.read("Task", task_id)
    if task is not None and task.resource is not None and task.resource.get("status") not in alerts.CLOSED_STATUSES:
        return 0  # reopened since: its Flag stays
    query = parse("Flag", [("identifier", f"{alerts.FLAG_TASK_SYSTEM}|{task_id}")], strict=True)
    ended = 0
    for flag in store.read_many("Flag", store.search(query).ids):
        if flag.resource is None or flag.resource.get("status") != "active":
            continue
        body = alerts.ended_flag(flag.resource, _now())
        _check(actor, settings.auth, "update", body)
        try:
            results = write.write(store, [write.Change(write.UPDATE, "Flag", id=flag.id, resource=body,
                                                       if_match=flag.version)], actor, dangling=True)
        except FHIRError as exc:
            if exc.status == 412:  # someone else changed it meanwhile; the next event sees it again
                continue
            raise
        _audit(settings, store, actor, results)
        ended += 1
    return ended


def _audit(settings: Settings, store: Any, actor: Actor, results: list) -> None:
    import auth

    auth.audit_write(store, actor, results, settings.server_base)


def settings_from(config: Any, rules: RuleSet) -> Settings:
    """The triage settings of an app's configuration."""
    return Settings(rules=rules, owner=config.triage_owner, auth=bool(config.auth),
                    server_base=config.base_url.rstrip("/"))


__all__ = ["ACTOR", "DEFAULT_SCOPES", "OUTBOX_KIND", "Settings", "end_flags", "failed", "handle", "queue",
           "raise_alert", "settings_from", "triage_actor"]
