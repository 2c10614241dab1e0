"""``relais rules check [FILE ...]``: check rule files without starting the server."""

from __future__ import annotations

import argparse
import sys

from fhir_server.config import ConfigError, load_config

from . import loader


def check(args: argparse.Namespace) -> int:
    """Check the files named (default: RELAIS_RULES_DIR, else the default rule set); 0 when all are usable."""
    try:
        if args.files:
            paths = list(args.files)
        else:
            directory = load_config().rules_dir or loader.RULES_DIR
            paths = loader.rule_files(directory)
        rules = loader.load_rules(paths)
    except ConfigError as exc:  # a RuleFileError is one: path:line: reason
        print(f"relais: {exc}", file=sys.stderr)
        return 1
    for rule in rules.rules:
        levels = "/".join([rule.priority, *(e.priority for e in rule.escalations)])
        print(f"{rule.path}:{rule.line}: {rule.id} v{rule.version} ({rule.resource_type}, {rule.rule_class}, {levels})")
    print(f"{len(rules.rules)} rule(s) in {len(paths)} file(s): ok")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rules check``; it needs no store (``run``)."""
    rules = subparsers.add_parser("rules", help="triage rule files")
    commands = rules.add_subparsers(dest="rules_command", required=True)
    checking = commands.add_parser("check", help="check rule files (default: those the server would load)")
    checking.add_argument("files", nargs="*", metavar="FILE", help="a *.rules.yaml file")
    checking.set_defaults(run=check)
