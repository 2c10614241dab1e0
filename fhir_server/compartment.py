"""The Patient compartment: R4's CompartmentDefinition for Patient, the one definition the server uses.

``compartmentdefinition-patient.json`` beside this module is an unmodified copy of
``CompartmentDefinition-patient.json`` from the HL7 FHIR R4 4.0.1 package ``hl7.fhir.r4.examples``
(http://hl7.org/fhir/R4/compartmentdefinition-patient.html; license CC0-1.0). For each resource type
it names the search parameters whose references put a resource in a patient's compartment.

Membership is what a search on those parameters finds: the reference values are extracted by the
search extraction itself (``search/extract.py``), so ``Observation?performer=Patient/p1`` and
``in_compartment("Observation", obs, "p1")`` never disagree. Access control (patient/ scopes),
``Patient/$everything``, bulk export and audit all ask here.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

from .search.extract import extractors

DEFINITION_FILE = Path(__file__).with_name("compartmentdefinition-patient.json")


@lru_cache(maxsize=1)
def definition() -> dict:
    """The CompartmentDefinition resource as shipped."""
    with DEFINITION_FILE.open(encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=1)
def _params_by_type() -> dict[str, tuple[str, ...]]:
    return {r["code"]: tuple(r.get("param", ())) for r in definition().get("resource", ()) if r.get("param")}


def params(resource_type: str | None) -> tuple[str, ...]:
    """The search parameters that put a ``resource_type`` resource in a patient's compartment (() if none)."""
    return _params_by_type().get(resource_type or "", ())


def has_compartment(resource_type: str | None) -> bool:
    """Whether resources of this type can belong to a patient's compartment at all."""
    return resource_type == "Patient" or bool(params(resource_type))


# Per type: (the extractor list they were picked from, the compartment parameters' extractors). A
# custom SearchParameter makes extract build a new list, which the identity check notices.
_picked: dict[str, tuple[list, list]] = {}
_lock = threading.Lock()


def _extractors(resource_type: str) -> list:
    every = extractors(resource_type)
    cached = _picked.get(resource_type)
    if cached is not None and cached[0] is every:
        return cached[1]
    wanted = set(params(resource_type))
    chosen = [ex for ex in every if ex.param.name in wanted]
    with _lock:
        _picked[resource_type] = (every, chosen)
    return chosen


def patient_ids(resource_type: str | None, resource: dict | None) -> set[str]:
    """Ids of the patients whose compartment ``resource`` is in (a Patient is in its own)."""
    if not resource or not resource_type:
        return set()
    found: set[str] = set()
    if resource_type == "Patient" and isinstance(resource.get("id"), str):
        found.add(resource["id"])
    if not params(resource_type):
        return found
    for ex in _extractors(resource_type):
        for row in ex.rows(resource):
            if row.kind == "reference" and row.system == "Patient" and row.code:
                found.add(row.code)
    return found


def in_compartment(resource_type: str | None, resource: dict | None, patient: str) -> bool:
    """Whether ``resource`` belongs to the compartment of Patient/``patient``."""
    return patient in patient_ids(resource_type, resource)
