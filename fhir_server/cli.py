"""The `relais` command: `relais serve`, and the sub-commands other rooms register (clients)."""

from __future__ import annotations

import argparse
import json
import sys

from .config import ConfigError, load_config
from .outbox import dead_letters
from .serve import configure_logging, serve


def _serve(args: argparse.Namespace) -> int:
    from app import create_app

    return serve(create_app, args.host, args.port)


def _outbox(args: argparse.Namespace, store) -> int:
    """Print the outbox's backlog and its dead letters (one JSON line each); --retry requeues them."""
    dead = dead_letters.listed(store)
    if args.retry:
        chosen = [(key, doc) for key, doc in dead if args.retry in ("all", key)]
        if not chosen:
            print(f"relais: no failed event {args.retry!r}", file=sys.stderr)
            return 1
        print(f"{dead_letters.requeue(store, chosen)} event(s) back in the outbox")
        return 0
    print(f"pending: {store.outbox_pending()}; failed: {len(dead)}")
    for key, doc in dead:
        print(json.dumps({"id": key, **doc}, ensure_ascii=False))
    return 0


def _hl7v2(args: argparse.Namespace, store) -> int:
    """Print the received HL7 v2 messages, oldest first, one JSON line each (--rejected: AE and AR only)."""
    from mappers.hl7v2.feed import records

    for key, doc in records(store, rejected_only=args.rejected):
        if not args.raw:
            doc = {k: v for k, v in doc.items() if k not in ("raw", "ack")}
        print(json.dumps({"key": key, **doc}, ensure_ascii=False))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relais", description="Relais FHIR R4 server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the FHIR API (werkzeug, threaded)")
    serve.add_argument("--host", help="address to listen on (RELAIS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (RELAIS_PORT, default 8080)")
    serve.set_defaults(run=_serve)
    outbox = commands.add_parser("outbox", help="events waiting in the outbox, and those that kept failing")
    outbox.add_argument("--retry", metavar="ID", help="put a failed event (or 'all') back in the outbox")
    outbox.set_defaults(handler=_outbox)
    hl7v2 = commands.add_parser("hl7v2", help="HL7 v2 messages received, with their outcome (AA, AE, AR) and reason")
    hl7v2.add_argument("--rejected", action="store_true", help="only those answered AE or AR")
    hl7v2.add_argument("--raw", action="store_true", help="include each message's text and its ACK")
    hl7v2.set_defaults(handler=_hl7v2)
    from mappers import cli as feeds_cli  # relais feeds [--rejected], relais feeds systems CLIENT

    feeds_cli.register(commands)
    try:
        from auth import cli as auth_cli
    except ImportError:
        auth_cli = None
    if auth_cli is not None and hasattr(auth_cli, "register"):
        auth_cli.register(commands)
    from rules import cli as rules_cli  # relais rules check

    rules_cli.register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; exits non-zero with one line on a configuration error."""
    configure_logging()
    args = _parser().parse_args(argv)
    try:
        if hasattr(args, "run"):
            sys.exit(args.run(args))
        # Sub-commands registered by other rooms take (args, store).
        from .store import open_store

        config = load_config()
        store = open_store(config.store)
        try:
            sys.exit(args.handler(args, store) or 0)
        finally:
            store.close()
    except ConfigError as exc:
        print(f"relais: {exc}", file=sys.stderr)
        sys.exit(2)


__all__ = ["main"]
