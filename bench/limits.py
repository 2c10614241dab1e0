"""The cost of the size-limit walk (fhir_server/limits.py) on real resources, in-process, against validation.

    .venv/bin/python bench/limits.py

Every entry of the Synthea Bundles in ../shared/fixtures/synthea is walked (``limits.check``) and
validated (``resources.validate``, which includes the walk) many times over; prints the time per
resource of each, and the largest repetitions, element count and depth met, against the defaults.
Then the requests of issue 14 that held a worker (50,000 identifiers, 100,000 names): how long the
walk takes to refuse them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kit.shared import SHARED  # noqa: E402

from fhir_server import limits  # noqa: E402
from fhir_server.errors import FHIRError  # noqa: E402
from fhir_server.resources import is_supported, validate  # noqa: E402


def shape(node, depth: int = 0) -> tuple[int, int, int]:
    """(largest array, elements, depth) of a JSON value, the way limits.check counts them."""
    if isinstance(node, dict):
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return 0, 0, depth
    widest, elements, deepest = len(node) if isinstance(node, list) else 0, len(children), depth
    for child in children:
        w, e, d = shape(child, depth + 1)
        widest, elements, deepest = max(widest, w), elements + e, max(deepest, d)
    return widest, elements, deepest


def timed(fn, resources: list[dict], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for resource in resources:
            fn(resource)
    return (time.perf_counter() - start) / (rounds * len(resources))


def main() -> None:
    resources = []
    for path in sorted((SHARED / "fixtures" / "synthea").glob("*.json")):
        bundle = json.loads(path.read_text())
        resources += [e["resource"] for e in bundle.get("entry", []) if is_supported(e["resource"]["resourceType"])]
    shapes = [shape(r) for r in resources]
    print(f"{len(resources)} Synthea resources of served types")
    print(f"largest array {max(s[0] for s in shapes)}, most elements {max(s[1] for s in shapes)},"
          f" deepest {max(s[2] for s in shapes)}; defaults {limits.DEFAULT}")
    walk = timed(limits.check, resources, 20)
    whole = timed(lambda r: validate(r, r["resourceType"]), resources, 3)
    print(f"walk {walk * 1e6:.1f} us a resource; validate (walk included) {whole * 1e6:.1f} us:"
          f" the walk is {walk / whole:.1%} of it")
    for label, resource in (
        ("50,000 identifiers", {"resourceType": "Patient",
                                "identifier": [{"system": "urn:x", "value": str(n)} for n in range(50_000)]}),
        ("100,000 names", {"resourceType": "Patient", "name": [{"family": f"F{n}"} for n in range(100_000)]}),
        ("120,000 given names", {"resourceType": "Patient", "name": [{"given": ["x"] * 600}] * 200}),
    ):
        start = time.perf_counter()
        try:
            validate(resource, "Patient")
        except FHIRError as exc:
            print(f"{label}: {exc.status} in {(time.perf_counter() - start) * 1e3:.1f} ms ({exc.diagnostics[:60]}...)")


if __name__ == "__main__":
    main()
