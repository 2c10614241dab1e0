"""Shared material for the search tests: the R4 examples and the Synthea bundles."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

import pytest
from kit.shared import EXAMPLES, SHARED

# UCUM conversion needs ucumvert; until every machine has it, its tests skip rather than fail.
needs_ucum = pytest.mark.skipif(importlib.util.find_spec("ucumvert") is None, reason="ucumvert is not installed")

SYNTHEA = SHARED / "fixtures" / "synthea"


def example(name: str) -> dict:
    """One shared R4 example by file stem (``Observation-blood-pressure``)."""
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def all_examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


@cache
def synthea_resources() -> list[dict]:
    out = []
    for f in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(f.read_text(encoding="utf-8"))
        out.extend(e["resource"] for e in bundle.get("entry", ()) if "resource" in e)
    return out


def _relink(node, links: dict[str, str]):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v in links:
                out[k] = links[v]
            else:
                out[k] = _relink(v, links)
        return out
    if isinstance(node, list):
        return [_relink(x, links) for x in node]
    return node


@cache
def synthea_linked() -> tuple[dict, ...]:
    """The Synthea resources as a server stores them: ids from their urn:uuid, references as Type/id.

    Each gets a distinct meta.lastUpdated (one second apart), so _lastUpdated searches and sorts have data.
    """
    entries, seen = [], set()
    for f in sorted(SYNTHEA.glob("*.json")):
        bundle = json.loads(f.read_text(encoding="utf-8"))
        for e in bundle.get("entry", ()):
            # Practitioners recur across bundles (conditional creates): keep the first.
            if "resource" in e and e["fullUrl"] not in seen:
                seen.add(e["fullUrl"])
                entries.append(e)
    links = {}
    for e in entries:
        r = e["resource"]
        rid = e["fullUrl"].removeprefix("urn:uuid:")
        links[e["fullUrl"]] = f"{r['resourceType']}/{rid}"
    out = []
    for i, e in enumerate(entries):
        r = _relink(e["resource"], links)
        r["id"] = e["fullUrl"].removeprefix("urn:uuid:")
        stamp = f"2026-11-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        r["meta"] = {**r.get("meta", {}), "lastUpdated": stamp, "versionId": "1"}
        out.append(r)
    return tuple(out)
