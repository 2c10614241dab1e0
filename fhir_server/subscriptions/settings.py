"""What the subscription handlers need to know of the app serving a store (they are given the store only)."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    """``auth``: whether deliveries are filtered by their owner's scopes; ``server_base`` for AuditEvents;
    ``allowed_endpoints``: RELAIS_RESTHOOK_ALLOW, checked again at each delivery."""

    auth: bool
    server_base: str
    allowed_endpoints: tuple[str, ...] = ()


_settings: weakref.WeakKeyDictionary[Any, Settings] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def install(store: Any, config: Any) -> None:
    """Make this process match and deliver Subscriptions of ``store`` (create_app calls it)."""
    from . import notify, resthook
    from .dispatcher import register_dead_letter_handler, register_handler

    with _lock:
        _settings[store] = Settings(auth=bool(config.auth), server_base=config.base_url.rstrip("/"),
                                    allowed_endpoints=tuple(config.resthook_allow))
    register_handler("resource", notify.queue_deliveries)
    register_handler(resthook.OUTBOX_KIND, resthook.deliver)
    register_dead_letter_handler(resthook.OUTBOX_KIND, resthook.mark_error)


def settings_for(store: Any) -> Settings | None:
    """The settings of the app on ``store``; None when no app installed subscriptions on it."""
    with _lock:
        return _settings.get(store)
