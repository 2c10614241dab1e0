"""``relais clients add|internal|list|disable|enable``: OAuth clients and internal actors are managed from the
command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .clients import INTERNAL_KINDS, ClientRegistry


def _add(args: argparse.Namespace, store: Any) -> int:
    jwks = None
    if args.jwks_file:
        try:
            with open(args.jwks_file, encoding="utf-8") as handle:
                jwks = json.load(handle)
        except (OSError, ValueError) as exc:
            print(f"error: cannot read JWKS from {args.jwks_file}: {exc}", file=sys.stderr)
            return 2
    try:
        client, secret = ClientRegistry(store).add(
            name=args.name,
            scopes=args.scopes.split(),
            jwks=jwks,
            jwks_url=args.jwks_url,
            secret=args.secret,
            patient=args.patient,
            gateway=args.gateway,
            practitioner=args.practitioner,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"client_id: {client.client_id}")
    print(f"auth:      {client.auth_method}")
    print(f"scopes:    {' '.join(client.scopes)}")
    if secret:
        print(f"secret:    {secret}")
        print("(shown once: Relais keeps only a hash of it)")
    return 0


def _internal(args: argparse.Namespace, store: Any) -> int:
    try:
        client = ClientRegistry(store).add_internal(args.kind, args.scopes.split())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"client_id: {client.client_id} ({client.name}): internal, gets no token")
    print(f"scopes:    {' '.join(client.scopes)}")
    return 0


def _list(args: argparse.Namespace, store: Any) -> int:
    rows = [client.summary() for client in ClientRegistry(store).list()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no clients: add one with 'relais clients add'")
        return 0
    for row in rows:
        state = "enabled" if row["enabled"] else "DISABLED"
        extra = f" patient={row['patient']}" if row["patient"] else ""
        extra += f" practitioner={row['practitioner']}" if row.get("practitioner") else ""
        print(f"{row['client_id']}  {state:8}  {row['auth']:19}  {row['name']}  [{row['scopes']}]{extra}")
    return 0


def _set_enabled(enabled: bool):
    def handler(args: argparse.Namespace, store: Any) -> int:
        if not ClientRegistry(store).set_enabled(args.client_id, enabled):
            print(f"error: no client {args.client_id}", file=sys.stderr)
            return 1
        print(f"client {args.client_id} {'enabled' if enabled else 'disabled'}")
        return 0

    return handler


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``clients`` sub-command; each handler is ``handler(args, store) -> exit code``."""
    clients = subparsers.add_parser("clients", help="manage OAuth clients (SMART Backend Services)")
    commands = clients.add_subparsers(dest="clients_command", required=True)

    add = commands.add_parser("add", help="register a client")
    add.add_argument("--name", required=True)
    add.add_argument("--scopes", required=True, help='space-separated SMART scopes, e.g. "system/Observation.rs"')
    how = add.add_mutually_exclusive_group(required=True)
    how.add_argument("--jwks-file", help="the client's public JWKS (private_key_jwt)")
    how.add_argument("--jwks-url", help="the client's JWKS URL, also its 'jku' (must be in RELAIS_JKU_ALLOWLIST)")
    how.add_argument("--secret", action="store_true", help="client_secret_basic, for development")
    add.add_argument("--patient", help="patient id: the context of the client's patient/ scopes")
    add.add_argument("--practitioner", help="Practitioner id: the doctor its tokens act for (their fhirUser claim)")
    add.add_argument("--gateway", action="store_true", help="may introspect tokens of other clients")
    add.set_defaults(handler=_add)

    internal = commands.add_parser("internal", help="register (or re-scope) an internal actor: a job of the server")
    internal.add_argument("kind", choices=sorted(INTERNAL_KINDS))
    internal.add_argument("--scopes", required=True, help='space-separated system/ scopes, e.g. "system/Task.cru"')
    internal.set_defaults(handler=_internal)

    listing = commands.add_parser("list", help="list clients")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    disable = commands.add_parser("disable", help="refuse new tokens and every existing token of a client")
    disable.add_argument("client_id")
    disable.set_defaults(handler=_set_enabled(False))

    enable = commands.add_parser("enable", help="enable a disabled client again")
    enable.add_argument("client_id")
    enable.set_defaults(handler=_set_enabled(True))
