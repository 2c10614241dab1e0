"""Locked resources: a document a doctor validated no longer changes, whoever asks.

A resource whose stored version carries ``LOCK_TAG`` in ``meta.tag`` is refused any update, patch or
delete (409) unless the platform makes the change itself (an internal job or the server, e.g. the
pre-DMP sender recording where a validated document stands). The write path checks the stored
version, not the body: a client cannot unlock a resource by dropping the tag, nor lock one by adding it
(403: a client could otherwise make a resource nobody may delete).
"""

from __future__ import annotations

from .actor import INTERNAL, SERVER_KIND, Actor

LOCK_SYSTEM = "https://relais.example/fhir/CodeSystem/lock"
LOCK_TAG = {"system": LOCK_SYSTEM, "code": "locked", "display": "Document validé : non modifiable"}


def is_locked(resource: dict | None) -> bool:
    """Whether ``resource`` (a stored version) carries the lock tag."""
    tags = ((resource or {}).get("meta") or {}).get("tag") or ()
    return any(isinstance(t, dict) and t.get("system") == LOCK_SYSTEM and t.get("code") == "locked" for t in tags)


def may_change_locked(actor: Actor | None) -> bool:
    """Only the platform's own jobs change a locked resource; a client never does, nor anyone with auth off."""
    return actor is not None and actor.kind in (INTERNAL, SERVER_KIND)


LOCKING_REFUSED = (f"Seule la plateforme verrouille un document (meta.tag {LOCK_SYSTEM}|locked). "
                   f"(Only the platform locks a document.)")


def locked_message(resource_type: str, id: str, action: str) -> str:
    """What a refused change says, in French then English."""
    verb = {"delete": "supprimé"}.get(action, "modifié")
    return (f"{resource_type}/{id} est un document validé par un médecin : il ne peut plus être {verb}. "
            f"({resource_type}/{id} is a document validated by a doctor: it can no longer be "
            f"{'deleted' if action == 'delete' else 'changed'}.)")
