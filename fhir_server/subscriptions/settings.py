"""What the subscription handlers need to know of the app they deliver for: bound to them at registration."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config


@dataclass(frozen=True)
class Settings:
    """``auth``: whether deliveries are filtered by their owner's scopes; ``server_base`` for AuditEvents;
    ``allowed_endpoints``: RELAIS_RESTHOOK_ALLOW, checked again at each delivery."""

    auth: bool
    server_base: str
    allowed_endpoints: tuple[str, ...] = ()


def from_config(config: Config) -> Settings:
    """The settings an app's configuration gives its subscription handlers."""
    return Settings(auth=bool(config.auth), server_base=config.base_url.rstrip("/"),
                    allowed_endpoints=tuple(config.resthook_allow))
