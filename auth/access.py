"""The one place that decides whether a caller may perform an interaction on a type.

``authenticate`` turns the request's bearer token into a Caller (or refuses with 401), ``decide``
allows an interaction or refuses with 403, ``can_read`` filters what a search, an include or a
notification would show. Every call is remembered for the request's AuditEvents (see audit.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fhir_server import compartment

from .scopes import SHARED_TYPES, Scope, parse_scopes, permission_for

# Operations: the permission they need on their type (all types when system-level). Unknown
# operations need create and update: they are assumed to write until they are listed here.
OPERATION_PERMISSIONS = {
    "everything": "r",
    "export": "r",
    "export-status": "r",
    "validate": "r",
    "meta": "r",
}
INSTANCE_INTERACTIONS = frozenset({"read", "vread", "history-instance", "update", "patch", "delete", "create"})
APPEND_ONLY = {"AuditEvent": frozenset({"update", "patch", "delete"})}


@dataclass
class Caller:
    """The authenticated client of a request (``None`` is used when authentication is off)."""

    client_id: str
    scopes: tuple[str, ...] = ()
    patient: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def parsed_scopes(self) -> list[Scope]:
        return parse_scopes(self.scopes)


class AccessDenied(Exception):
    """401 (who are you?) or 403 (you may not); the message goes into the OperationOutcome."""

    def __init__(self, status: int, message: str, code: str = "forbidden"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def init_app(app: Any, store: Any, config: Any) -> None:
    """Register the auth endpoints, keys and audit hook on the Flask app; see blueprint.py."""
    from .blueprint import init_app as _init_app

    _init_app(app, store, config)


def authenticate(request: Any) -> Caller | None:
    """The caller of ``request``; raises AccessDenied(401). None means authentication is off."""
    from .blueprint import current_state

    state = current_state()
    if state is None:
        return None
    return state.authenticate(request)


def _scope_allows(
    caller: Caller, permission: str, resource_type: str | None, resource: dict | None, interaction: str
) -> bool:
    # resource_type None: a system-level search or history; any scope with the letter lets it run
    # and can_read filters what comes back
    for scope in caller.parsed_scopes:
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
    caller: Caller, permission: str, resource_type: str | None, resource: dict | None, interaction: str
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


def _check(caller: Caller | None, interaction: str, resource_type: str | None, resource: dict | None) -> str | None:
    """Why ``interaction`` is refused, or None when it is allowed."""
    if interaction in APPEND_ONLY.get(resource_type or "", ()):
        return f"{resource_type} resources are append-only: no client may {interaction} them"
    if caller is None or interaction == "capabilities":
        return None
    if interaction in ("batch", "transaction"):
        # the Bundle itself needs only a valid token: every entry is decided on its own
        return None if caller.scopes else "the access token grants no scope"
    if interaction.startswith("operation:"):
        name = interaction.split(":", 1)[1]
        if name == "export" and caller.patient and all(s.context == "patient" for s in caller.parsed_scopes):
            return "bulk export needs system/ or user/ scopes"
        needed = OPERATION_PERMISSIONS.get(name)
        letters = needed or "cu"
        ok = all(_scope_allows(caller, p, resource_type, resource, interaction) for p in letters)
        return None if ok else f"scope does not permit ${name} on {resource_type or 'the system'}"
    permission = permission_for(interaction)
    if permission is None:
        return f"unknown interaction {interaction!r}"
    if _scope_allows(caller, permission, resource_type, resource, interaction):
        if interaction == "update" and resource_type and not sees_all(caller, resource_type):
            return _check_replaced(caller, resource_type, resource)
        return None
    where = resource_type or "the system"
    if resource is not None and caller.patient:
        return f"scope does not permit {interaction} on {where} outside the compartment of Patient/{caller.patient}"
    return f"scope does not permit {interaction} on {where} (needs '{permission}')"


def _check_replaced(caller: Caller, resource_type: str, resource: dict | None) -> str | None:
    """An update by a restricted caller (patient/ or granular scopes) must be allowed on the version it
    replaces too: otherwise a client could take another patient's resource by rewriting its subject."""
    from .blueprint import current_state

    state = current_state()
    rid = resource.get("id") if isinstance(resource, dict) else None
    if state is None or not isinstance(rid, str):
        return None
    current = state.store.read(resource_type, rid)
    if current is None or current.deleted or current.resource is None:
        return None  # update as create: the new body was checked
    if _scope_allows(caller, "u", resource_type, current.resource, "update"):
        return None
    return f"scope does not permit update of {resource_type}/{rid} as it stands (outside the caller's reach)"


def decide(caller: Caller | None, interaction: str, resource_type: str | None, resource: dict | None = None) -> None:
    """Raise AccessDenied(403) unless ``caller`` may do ``interaction`` on ``resource_type``."""
    from .blueprint import record_decision

    refusal = _check(caller, interaction, resource_type, resource)
    record_decision(interaction, resource_type, resource, refusal)
    if refusal is not None:
        raise AccessDenied(403, refusal, "forbidden")


def can_read(caller: Caller | None, resource: dict) -> bool:
    """Whether ``resource`` may be shown to ``caller`` (search results, includes, notifications)."""
    if caller is None:
        return True
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return False
    return any(_scope_allows(caller, permission, resource_type, resource, "read") for permission in "rs")


def capability_security() -> dict | None:
    """``CapabilityStatement.rest.security`` for the current app (None when auth is not installed)."""
    from .blueprint import current_state

    state = current_state()
    return state.capability_security() if state is not None else None


def caller_for_client(store: Any, client_id: str) -> Caller:
    """The Caller a registered client stands for outside any request (a Subscription's deliveries).

    Its registered scopes and patient context; an unknown or disabled client gets no scope at all,
    so ``can_read`` refuses everything (never None, which would mean "authentication off").
    """
    from .clients import ClientRegistry

    client = ClientRegistry(store).get(client_id)
    if client is None or not client.enabled:
        return Caller(client_id=client_id)
    return Caller(client_id=client_id, scopes=tuple(client.scopes), patient=client.patient)


def sees_all(caller: Caller | None, resource_type: str) -> bool:
    """Whether ``can_read`` passes every resource of ``resource_type`` for ``caller``.

    When it does not (patient/ or granular scopes), a search's ``total`` counted by the store
    would reveal how many resources the caller may not see: report it after filtering, or omit it.
    """
    if caller is None:
        return True
    return any(
        scope.context != "patient" and scope.query is None and scope.covers_type(resource_type)
        and bool(scope.permissions & {"r", "s"})
        for scope in caller.parsed_scopes
    )
