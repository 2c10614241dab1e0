"""Shared material for the search tests: the R4 examples and the Synthea bundles."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

SHARED = Path(os.environ.get("RELAIS_SHARED", Path(__file__).resolve().parents[3] / "shared"))
EXAMPLES = SHARED / "fixtures" / "fhir-r4-examples"
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
