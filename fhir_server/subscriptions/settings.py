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
    # deliveries of both kinds of Subscription (courier.py): RELAIS_RESTHOOK_* settings
    retry_hours: float = 24.0
    workers: int = 4
    endpoint_in_flight: int = 1
    timeout_s: float = 10.0


def from_config(config: Config) -> Settings:
    """The settings an app's configuration gives its subscription handlers."""
    return Settings(auth=bool(config.auth), server_base=config.base_url.rstrip("/"),
                    allowed_endpoints=tuple(config.resthook_allow), retry_hours=config.resthook_retry_hours,
                    workers=config.resthook_workers, endpoint_in_flight=config.resthook_endpoint_in_flight,
                    timeout_s=config.resthook_timeout_s)
