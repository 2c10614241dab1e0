"""``relais feeds``: the JSON feeds' payloads with their outcome (``--rejected``: refused, failed, or with a
measure rejected), and ``relais feeds systems CLIENT``: the identifier systems a partner names its patients in."""

from __future__ import annotations

import argparse
import json
import sys

from . import senders
from .report.mapper import TABLE as REPORTS
from .teleconsultation.mapper import TABLE as TELECONSULTATIONS
from .telemonitoring.mapper import TABLE as MEASURES

TABLES = {"telemonitoring": MEASURES, "teleconsultation": TELECONSULTATIONS, "report": REPORTS}


def rejected(doc: dict) -> bool:
    """Refused, failed, or accepted with some of its items rejected (a measure out of bounds)."""
    return doc.get("reason") is not None or doc.get("outcome") == "partial"


def listed(store, only: str | None = None, rejected_only: bool = False) -> list[tuple[str, str, dict]]:
    """(feed, key, record) of every payload received, oldest first."""
    found = []
    for name, table in TABLES.items():
        if only in (None, name):
            found += [(name, key, doc) for key, doc in store.kv_list(table) if not rejected_only or rejected(doc)]
    return sorted(found, key=lambda item: item[2].get("received", ""))


def _feeds(args: argparse.Namespace, store) -> int:
    if getattr(args, "feeds_command", None) == "systems":
        return _systems(args, store)
    for name, key, doc in listed(store, args.feed, args.rejected):
        if not args.raw:
            doc = {k: v for k, v in doc.items() if k not in ("raw", "ack")}
        print(json.dumps({"feed": name, "key": key, **doc}, ensure_ascii=False))
    return 0


def _systems(args: argparse.Namespace, store) -> int:
    from auth.clients import ClientRegistry

    if ClientRegistry(store).get(args.client_id) is None:
        print(f"relais: no client {args.client_id!r} (relais clients list)", file=sys.stderr)
        return 1
    systems = senders.patient_systems(store, args.client_id)
    for system in args.add or []:
        systems = senders.register(store, args.client_id, system)
    for system in args.remove or []:
        systems = senders.unregister(store, args.client_id, system)
    print(json.dumps({"client_id": args.client_id, "patient_systems": list(systems)}))
    return 0


def register(commands) -> None:
    """Add ``relais feeds`` to the ``relais`` command's sub-commands."""
    feeds = commands.add_parser("feeds", help="payloads received on /feeds/*, with their outcome and reason")
    feeds.add_argument("--rejected", action="store_true", help="only those refused, failed or with a rejected item")
    feeds.add_argument("--feed", choices=list(TABLES), help="only this feed's")
    feeds.add_argument("--raw", action="store_true", help="include each payload as received and its answer")
    feeds.set_defaults(handler=_feeds)
    sub = feeds.add_subparsers(dest="feeds_command")
    systems = sub.add_parser("systems", help="the identifier systems a partner names its patients in")
    systems.add_argument("client_id")
    systems.add_argument("--add", action="append", metavar="SYSTEM", help="register a system (repeatable)")
    systems.add_argument("--remove", action="append", metavar="SYSTEM", help="unregister a system")
    systems.set_defaults(handler=_feeds)


__all__ = ["TABLES", "listed", "register", "rejected"]
