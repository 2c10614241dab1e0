"""Settings from RELAIS_* environment variables; an invalid value stops the start."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


class ConfigError(Exception):
    """A RELAIS_* variable has a value Relais cannot use; the message names it."""


def _store_url(value: str) -> str:
    if not (value.startswith("sqlite:///") or value.startswith("mongodb://") or value.startswith("mongodb+srv://")):
        raise ValueError("expected sqlite:///PATH or mongodb://...")
    return value


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("expected a positive integer")
    return number


def _snapshot_max(value: str) -> int:
    number = _positive_int(value)
    # A snapshot is one stored document: 100,000 ids of up to 64 characters stay far below
    # MongoDB's 16 MB document limit.
    if number > 100_000:
        raise ValueError("expected at most 100000")
    return number


def _at_most(bound: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = _positive_int(value)
        if number > bound:
            raise ValueError(f"expected at most {bound}")
        return number

    return parse


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise ValueError("expected a TCP port (1-65535)")
    return number


def _on_off(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on or off")


def _base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an absolute http(s) URL")
    return value.rstrip("/")


def _local_reference(value: str) -> str:
    kind, _, id = value.strip().partition("/")
    if not kind[:1].isupper() or not id or "/" in id:
        raise ValueError("expected a reference like Organization/on-call-coordination")
    return value.strip()


def _url_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _origins(value: str) -> tuple[str, ...]:
    origins = _url_list(value)
    for origin in origins:
        if origin != "*" and (not origin.startswith(("http://", "https://")) or origin.count("/") != 2):
            raise ValueError(f"{origin!r} is not an origin like https://app.example (or *)")
    return origins


def _networks(value: str) -> tuple[str, ...]:
    import ipaddress

    networks = _url_list(value)
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("expected a positive number")
    return number


def _oid(value: str) -> str:
    import re

    if not re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", value):
        raise ValueError("expected an OID such as 1.2.250.1.999.1")
    return value


@dataclass(frozen=True)
class Config:
    """One field per RELAIS_<NAME> variable; the README table lists them."""

    store: str = "sqlite:///./var/relais.db"
    base_url: str = "http://127.0.0.1:8080/fhir"
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 10 * 1024 * 1024
    default_count: int = 20
    max_count: int = 1000
    max_bundle_entries: int = 10000
    auth: bool = True
    token_lifetime_s: int = 300
    jku_allowlist: tuple[str, ...] = ()
    resthook_allow: tuple[str, ...] = ()  # URL prefixes a Subscription may deliver to; empty: any http(s) URL
    dispatcher_interval_s: float = 1.0
    # Subscriptions' deliveries, both kinds (fhir_server/subscriptions/courier.py): retried this long, then error.
    resthook_retry_hours: float = 24.0
    resthook_workers: int = 4  # notifications in flight at once, all endpoints together
    resthook_endpoint_in_flight: int = 1  # in flight at once to one endpoint (1: the endpoint's order kept)
    resthook_timeout_s: float = 10.0  # wait for an endpoint's answer at most this long (the backport timeout less)
    scheduler: bool = True
    export_dir: str = ""  # empty: exports/ beside the SQLite file, ./var/exports for MongoDB
    search_snapshot_max: int = 10_000  # ids a search snapshot keeps (paging covers those)
    search_snapshot_lifetime_s: int = 3600  # paging links of a search answer for this long
    # The largest search accepted (400 beyond): see fhir_server/search/limits.py.
    search_max_chain_depth: int = 3
    search_max_parameters: int = 100
    search_max_values: int = 500
    search_max_sort_keys: int = 10
    search_max_includes: int = 20
    mllp_port: int = 0  # 0: no MLLP listener
    mllp_host: str = ""  # empty: RELAIS_HOST
    mllp_client: str = ""  # the registered OAuth client every MLLP message acts as
    mllp_allow: tuple[str, ...] = ()  # source addresses or CIDRs; empty: any
    mllp_max_bytes: int = 1024 * 1024
    mllp_timeout_s: float = 60.0  # a silent connection is closed, a frame must arrive within it
    mllp_max_connections: int = 32
    hl7v2_tz: str = "Europe/Paris"  # the senders' time zone: an HL7 v2 time without a UTC offset is local there
    # The size and shape of one resource (fhir_server/limits.py): beyond them, 413 or 422 before validation.
    max_repetitions: int = 1000  # items of one array (Bundle.entry, Group.member, List.entry... excepted)
    max_elements: int = 100_000  # object members and array items in one resource
    max_depth: int = 64  # nesting of objects and arrays
    allow_dangling_references: bool = False  # on: a reference to a local resource that does not exist is stored
    cors_origins: tuple[str, ...] = ()  # browser origins allowed by CORS; empty: CORS off
    health_max_backlog_s: float = 60.0  # /health fails when an unclaimed outbox event is older
    rules_dir: str = ""  # triage rule files (*.rules.yaml); empty: the default rule set in rules/
    triage_owner: str = "Organization/on-call-coordination"  # Task.owner of triage alerts: the on-call team
    # The national record (DMP): where validated pre-DMPs go (IHE MHD ITI-65), with mutual TLS.
    dmp_endpoint: str = ""  # empty: validated documents wait in the outbox (and become dead letters)
    dmp_cert: str = ""  # PEM client certificate (IGC Santé) for mutual TLS
    dmp_key: str = ""  # its PEM private key
    dmp_ca: str = ""  # PEM CA bundle the recipient's certificate is checked against; empty: the system's
    dmp_timeout_s: float = 10.0  # per connect and per read
    dmp_retry_window_s: float = 480.0  # retried with backoff this long (the outbox's own ~8 min caps it)
    dmp_source_oid: str = ""  # the sending system's OID (SubmissionSet sourceId); empty: derived from base_url


def _time_zone(raw: str) -> str:
    """An IANA time zone name (Europe/Paris) that zoneinfo knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone name (e.g. Europe/Paris)") from None
    return raw


_PARSERS: dict[str, Callable[[str], Any]] = {
    "store": _store_url,
    "base_url": _base_url,
    "host": str,
    "port": _port,
    "max_body_bytes": _positive_int,
    "default_count": _positive_int,
    "max_count": _positive_int,
    "max_bundle_entries": _positive_int,
    "auth": _on_off,
    "token_lifetime_s": _positive_int,
    "jku_allowlist": _url_list,
    "resthook_allow": _url_list,
    "dispatcher_interval_s": float,
    "resthook_retry_hours": _positive_float,
    "resthook_workers": _at_most(64),
    "resthook_endpoint_in_flight": _at_most(16),
    "resthook_timeout_s": _positive_float,
    "scheduler": _on_off,
    "export_dir": str,
    "search_snapshot_max": _snapshot_max,
    "search_snapshot_lifetime_s": _positive_int,
    # beyond these SQLite itself fails (fhir_server/search/limits.py)
    "search_max_chain_depth": _at_most(3),
    "search_max_parameters": _at_most(500),
    "search_max_values": _at_most(500),
    "search_max_sort_keys": _positive_int,
    "search_max_includes": _positive_int,
    "mllp_port": _port,
    "mllp_host": str,
    "mllp_client": str,
    "mllp_allow": _networks,
    "mllp_max_bytes": _positive_int,
    "mllp_timeout_s": _positive_float,
    "mllp_max_connections": _positive_int,
    "hl7v2_tz": _time_zone,
    "max_repetitions": _positive_int,
    "max_elements": _positive_int,
    "max_depth": _positive_int,
    "allow_dangling_references": _on_off,
    "cors_origins": _origins,
    "health_max_backlog_s": _positive_float,
    "rules_dir": str,
    "triage_owner": _local_reference,
    "dmp_endpoint": _base_url,
    "dmp_cert": str,
    "dmp_key": str,
    "dmp_ca": str,
    "dmp_timeout_s": _positive_float,
    "dmp_retry_window_s": _positive_float,
    "dmp_source_oid": _oid,
}


def env_name(field_name: str) -> str:
    return "RELAIS_" + field_name.upper()


def load_config(environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read RELAIS_* variables (then ``overrides``); raise ConfigError naming a bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Config):
        name = env_name(f.name)
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[f.name] = _PARSERS[f.name](raw)
        except ValueError as exc:
            raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None
    values.update(overrides)
    config = Config(**values)
    if config.default_count > config.max_count:
        raise ConfigError(f"RELAIS_DEFAULT_COUNT={config.default_count} exceeds RELAIS_MAX_COUNT={config.max_count}")
    check_mllp(config)
    check_dmp(config)
    return config


def check_dmp(config: Config) -> None:
    """Mutual TLS to the national record: a key needs its certificate, a certificate an https endpoint."""
    if config.dmp_key and not config.dmp_cert:
        raise ConfigError("RELAIS_DMP_KEY is set without RELAIS_DMP_CERT (the client certificate it goes with)")
    if config.dmp_cert and config.dmp_endpoint and not config.dmp_endpoint.startswith("https://"):
        raise ConfigError(f"RELAIS_DMP_CERT is set but RELAIS_DMP_ENDPOINT={config.dmp_endpoint} is not https: "
                          "the client certificate would never be presented")


def check_mllp(config: Config) -> None:
    """MLLP carries no token: with authentication on, a listener needs the client its messages act as."""
    if config.mllp_port and config.auth and not config.mllp_client:
        raise ConfigError("RELAIS_MLLP_CLIENT is required when RELAIS_MLLP_PORT is set and RELAIS_AUTH is on"
                          " (MLLP carries no token: messages act as that registered client)")
    host = config.mllp_host or config.host
    if config.mllp_port and not config.auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"RELAIS_MLLP_HOST={host} is not loopback, but RELAIS_AUTH=off would let anyone write"
                          " through the MLLP listener")
