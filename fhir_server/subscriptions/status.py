"""The server's own changes of a Subscription's status: ``error`` after its retries, ``off`` past its end."""

from __future__ import annotations

import logging
from typing import Any

from ..actor import SERVER

log = logging.getLogger("relais.subscriptions")


def with_status(subscription: dict, status: str, error: str | None) -> dict | None:
    """``subscription`` with ``status`` (and ``error``); None when there is nothing to change, or to put in
    ``error`` one its client no longer has active (turned off meanwhile: left as its client set it)."""
    current = subscription.get("status")
    if current == status or (status == "error" and current != "active"):
        return None
    changed = {**subscription, "status": status}
    if error:
        changed["error"] = error[:1000]
    return changed


def set_status(store: Any, subscription_id: str, status: str, error: str | None) -> None:
    """The server's own write of a Subscription's ``status`` (and ``error``); its owner is kept."""
    from .. import write

    for _ in range(5):  # the owner may be updating it at the same moment
        stored = store.read("Subscription", subscription_id)
        if stored is None or stored.deleted or stored.resource is None:
            return
        changed = with_status(stored.resource, status, error)
        if changed is None:
            return
        try:
            write.write(store, [write.Change(write.UPDATE, "Subscription", id=subscription_id, resource=changed,
                                             if_match=stored.version)], SERVER)
            log.warning("Subscription/%s set to %s%s", subscription_id, status, f": {error}" if error else "")
            return
        except Exception as exc:  # noqa: BLE001  (a 412 from If-Match: read again)
            if getattr(exc, "status", None) != 412:
                raise
