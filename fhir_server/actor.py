"""Who makes a change: the actor every write names, whatever way it came in.

Plain data on the ground floor, so the write path can take one without knowing Flask or the auth
layer. ``None`` where an actor is expected means authentication is off (anyone may do anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLIENT, INTERNAL, SERVER_KIND = "client", "internal", "server"


@dataclass(frozen=True)
class Actor:
    """An OAuth client of a request or feed (``client``), a registered internal job such as the triage
    engine (``internal``), or the server itself doing its own bookkeeping (``server``)."""

    client_id: str
    scopes: tuple[str, ...] = ()
    patient: str | None = None  # the patient context of patient/ scopes
    claims: dict[str, Any] = field(default_factory=dict, compare=False)  # the access token's, for a request
    kind: str = CLIENT
    name: str | None = None  # how AuditEvents display it

    @property
    def is_server(self) -> bool:
        return self.kind == SERVER_KIND


# The server's own writes (a Subscription put in status error, AuditEvents stored from the outbox):
# they are not a client's, so a Subscription keeps the owner it has.
SERVER = Actor(client_id="relais-server", kind=SERVER_KIND, name="Relais FHIR server")
