"""The one place that decides whether a caller may perform an interaction on a type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Caller:
    """The authenticated client of a request (``None`` is used when authentication is off)."""

    client_id: str
    scopes: tuple[str, ...] = ()
    patient: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)


class AccessDenied(Exception):
    """401 (who are you?) or 403 (you may not); the message goes into the OperationOutcome."""

    def __init__(self, status: int, message: str, code: str = "forbidden"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def init_app(app: Any, store: Any, config: Any) -> None:
    """Register the auth endpoints and keys on the Flask app (stub until the auth issue lands)."""


def authenticate(request: Any) -> Caller | None:
    """The caller of ``request``; raises AccessDenied(401). None means authentication is off."""
    return None


def decide(caller: Caller | None, interaction: str, resource_type: str | None, resource: dict | None = None) -> None:
    """Raise AccessDenied(403) unless ``caller`` may do ``interaction`` on ``resource_type``."""


def can_read(caller: Caller | None, resource: dict) -> bool:
    """Whether ``resource`` may be shown to ``caller`` (search results, includes, notifications)."""
    return True
