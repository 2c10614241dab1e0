"""The one place that decides whether an actor may perform an interaction on a type: pure functions.

``refusal`` says why an interaction is refused (None: allowed), ``can_read`` filters what a search, an
include or a notification would show. They read neither the store nor Flask: an update by a restricted
actor is decided on the version it replaces, which the caller reads and passes. Recording a decision
for the AuditEvents is the caller's job (the REST layer's, a feed's, a job's).
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from functools import lru_cache

from fhir_server import compartment
from fhir_server.actor import Actor

from .scopes import SHARED_TYPES, Scope, parse_scopes, permission_for

# Operations: the permission they need on their type (all types when system-level). Unknown
# operations need create and update: they are assumed to write until they are listed here.
OPERATION_PERMISSIONS = {
    "everything": "r",
    "export": "r",
    "export-status": "r",
    "validate": "r",
    "meta": "r",
    "worklist": "r",  # Task/$worklist: a search of Task with what it includes
}
# Operations for a backend service alone: not on behalf of a user or a patient (their scopes do not count).
SYSTEM_OPERATIONS = frozenset({"reindex"})
INSTANCE_INTERACTIONS = frozenset({"read", "vread", "history-instance", "update", "patch", "delete", "create"})
# Interactions no client may do on a type, whatever its scopes: refused with 405, not 403 (``denial``).
APPEND_ONLY = {"AuditEvent": frozenset({"update", "patch", "delete"})}


Caller = Actor  # the actor of a request: the client its access token names


class Unread(Enum):
    """The caller did not read the version an update replaces (see ``needs_replaced``)."""

    UNREAD = "unread"


UNREAD = Unread.UNREAD


@lru_cache(maxsize=1024)
def _parsed(scopes: tuple[str, ...]) -> tuple[Scope, ...]:
    # parsed once per distinct grant and process: every decision of a request asks again
    return tuple(parse_scopes(scopes))


class AccessDenied(Exception):
    """401 (who are you?) or 403 (you may not); the message goes into the OperationOutcome."""

    def __init__(self, status: int, message: str, code: str = "forbidden"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _scope_allows(
    caller: Actor, permission: str, resource_type: str | None, resource: dict | None, interaction: str
) -> bool:
    # resource_type None: a system-level search or history; any scope with the letter lets it run
    # and can_read filters what comes back
    for scope in _parsed(caller.scopes):
        if permission not in scope.permissions:
            continue
        if resource_type is not None and not scope.covers_type(resource_type):
            continue
        if scope.query is not None and not _query_allows(scope, resource, interaction):
            continue
        if scope.context != "patient":
            return True
        if _patient_scope_allows(caller, permission, resource_type, resource, interaction):
            return True
    return False


def _query_allows(scope: Scope, resource: dict | None, interaction: str) -> bool:
    """A granular scope reaches only resources its query matches: type-level interactions run
    (results go through can_read), an instance one without its resource is refused (fail closed)."""
    if resource is None:
        return interaction not in INSTANCE_INTERACTIONS
    return scope.matches(resource)


def _patient_scope_allows(
    caller: Actor, permission: str, resource_type: str | None, resource: dict | None, interaction: str
) -> bool:
    """A patient/ scope reaches only its patient's compartment (and reads shared reference types)."""
    if not caller.patient or resource_type is None:
        return False  # system-wide interactions are not for a patient-bound caller
    if resource_type in SHARED_TYPES:
        return permission in "rs"
    if not compartment.has_compartment(resource_type):
        return False
    if resource is None:
        # type level (search, type history): allowed, results go through can_read; an instance
        # interaction without its resource cannot be checked, so it is refused (fail closed)
        return interaction not in INSTANCE_INTERACTIONS
    return compartment.in_compartment(resource_type, resource, caller.patient)


def refusal(
    caller: Actor | None,
    interaction: str,
    resource_type: str | None,
    resource: dict | None = None,
    replaced: dict | None | Unread = UNREAD,
) -> str | None:
    """Why ``caller`` may not do ``interaction`` on ``resource_type`` (``resource``), or None when it may.

    ``replaced``: for an update, the stored resource it replaces (None: there is none, a create); an
    update by a restricted caller (``needs_replaced``) without it is refused.
    """
    if never_allowed(interaction, resource_type):
        return f"{resource_type} resources are append-only: no client may {interaction} them"
    if caller is None or interaction == "capabilities":
        return None
    if interaction in ("batch", "transaction"):
        # the Bundle itself needs only a valid token: every entry is decided on its own
        return None if caller.scopes else "the access token grants no scope"
    if interaction.startswith("operation:"):
        name = interaction.split(":", 1)[1]
        if name in SYSTEM_OPERATIONS:
            caller = replace(caller, scopes=tuple(s for s in caller.scopes if s.startswith("system/")), patient=None)
            if not caller.scopes:
                return f"${name} needs system/ scopes"
        if name == "export" and caller.patient and all(s.context == "patient" for s in _parsed(caller.scopes)):
            return "bulk export needs system/ or user/ scopes"
        needed = OPERATION_PERMISSIONS.get(name)
        letters = needed or "cu"
        ok = all(_scope_allows(caller, p, resource_type, resource, interaction) for p in letters)
        return None if ok else f"scope does not permit ${name} on {resource_type or 'the system'}"
    permission = permission_for(interaction)
    if permission is None:
        return f"unknown interaction {interaction!r}"
    if _scope_allows(caller, permission, resource_type, resource, interaction):
        if needs_replaced(caller, interaction, resource_type):
            return _check_replaced(caller, resource_type, resource, replaced)
        return None
    where = resource_type or "the system"
    if resource is not None and caller.patient:
        return f"scope does not permit {interaction} on {where} outside the compartment of Patient/{caller.patient}"
    return f"scope does not permit {interaction} on {where} (needs '{permission}')"


def _check_replaced(
    caller: Actor, resource_type: str, resource: dict | None, replaced: dict | None | Unread
) -> str | None:
    """An update by a restricted caller (patient/ or granular scopes) must be allowed on the version it
    replaces too: otherwise a client could take another patient's resource by rewriting its subject."""
    rid = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(rid, str):
        return None
    if replaced is UNREAD:
        return f"the update of {resource_type}/{rid} cannot be decided without the version it replaces"
    if replaced is None:
        return None  # update as create: the new body was checked
    if _scope_allows(caller, "u", resource_type, replaced, "update"):
        return None
    return f"scope does not permit update of {resource_type}/{rid} as it stands (outside the caller's reach)"


def needs_replaced(caller: Actor | None, interaction: str, resource_type: str | None) -> bool:
    """Whether deciding ``interaction`` needs the version it replaces (an update by a restricted caller)."""
    return interaction == "update" and resource_type is not None and not sees_all(caller, resource_type)


def never_allowed(interaction: str, resource_type: str | None) -> bool:
    """Whether ``interaction`` is one the type never takes, for any client (AuditEvent's update)."""
    return interaction in APPEND_ONLY.get(resource_type or "", ())


def denial(interaction: str, resource_type: str | None, why: str) -> AccessDenied:
    """The refusal ``why`` as an exception: 405 for an interaction the type never takes (R4 http.html:
    a blanket policy against deleting a type answers 405 Method Not Allowed; HAPI FHIR answers 405 to
    what a type does not support, and the CapabilityStatement omits it), else 403."""
    if never_allowed(interaction, resource_type):
        return AccessDenied(405, why, "not-supported")
    return AccessDenied(403, why, "forbidden")


def decide(
    caller: Actor | None,
    interaction: str,
    resource_type: str | None,
    resource: dict | None = None,
    replaced: dict | None | Unread = UNREAD,
) -> None:
    """Raise AccessDenied (403, or 405: ``denial``) unless ``caller`` may do ``interaction``."""
    why = refusal(caller, interaction, resource_type, resource, replaced)
    if why is not None:
        raise denial(interaction, resource_type, why)


def can_read(caller: Actor | None, resource: dict) -> bool:
    """Whether ``resource`` may be shown to ``caller`` (search results, includes, notifications)."""
    if caller is None:
        return True
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    return any(_scope_allows(caller, permission, resource_type, resource, "read") for permission in "rs")


def sees_all(caller: Actor | None, resource_type: str) -> bool:
    """Whether ``can_read`` passes every resource of ``resource_type`` for ``caller``.

    When it does not (patient/ or granular scopes), a search's ``total`` counted by the store
    would reveal how many resources the caller may not see: report it after filtering, or omit it.
    """
    if caller is None:
        return True
    return any(
        scope.context != "patient" and scope.query is None and scope.covers_type(resource_type)
        and bool(scope.permissions & {"r", "s"})
        for scope in _parsed(caller.scopes)
    )
