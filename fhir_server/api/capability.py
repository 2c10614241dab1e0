"""GET /fhir/metadata: a CapabilityStatement generated from the registries, claiming what is implemented.

Every claim here is exercised by ``tests/api/test_capability_claims.py``: the interactions of each
type (less what access control never allows, as AuditEvent's update, patch and delete), its search
parameters, ``searchInclude``/``searchRevInclude`` from its reference parameters, and the operations,
each where it is invoked (system, type or instance) with its definition's canonical URL.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from auth.access import APPEND_ONLY

from ..patch import MEDIA_TYPES as PATCH_MEDIA_TYPES
from ..resources import SUPPORTED_TYPES
from ..search.registry import SearchParam, get_registry
from .http import FHIR_JSON, base_url, fhir_response

capability = Blueprint("fhir_capability", __name__)

TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                     "search-type")
PATIENT_COMPARTMENT = "http://hl7.org/fhir/CompartmentDefinition/patient"

# Operations invoked on a resource type or instance, by their definition: the types that declare them.
# An operation added with ``add_capability`` whose definition is listed here is declared, under the name
# it is invoked by, in those types' resource.operation (``None``: every type), and stays in rest.operation,
# the list of every operation the server has.
TYPE_OPERATIONS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "http://hl7.org/fhir/OperationDefinition/Resource-validate": ("validate", None),
    "http://hl7.org/fhir/OperationDefinition/Patient-everything": ("everything", ("Patient",)),
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export": ("export", ("Patient",)),
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export": ("export", ("Group",)),
    "http://relais.example/OperationDefinition/Task-worklist": ("worklist", ("Task",)),
}

# R4 patchFormat: JSON Patch and JSON Merge Patch by their media types; FHIRPath Patch is a Parameters
# resource, so it comes as FHIR JSON (as HAPI FHIR declares it).
PATCH_FORMATS = (*PATCH_MEDIA_TYPES, FHIR_JSON)
# R4 format: the MIME type and its short code, as ``_format`` takes them; XML is refused (406, 415).
FORMATS = (FHIR_JSON, "json")

_PARAM_TYPES = {"number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"}


def _search_params(params: dict[str, SearchParam]) -> list[dict]:
    return [
        {"name": code, "definition": p.url or f"http://hl7.org/fhir/SearchParameter/{code}", "type": p.type}
        for code, p in sorted(params.items())
        if p.type in _PARAM_TYPES
    ]


def _includes(types: tuple[str, ...]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per type: the ``_include`` values it takes (``*`` and each reference parameter) and the
    ``_revinclude`` values that reach it (each reference parameter of any type that may point at it)."""
    registry = get_registry()
    include: dict[str, list[str]] = {}
    revinclude: dict[str, list[str]] = {t: [] for t in types}
    for source in types:
        refs = sorted(code for code, p in registry.params_for(source).items() if p.type == "reference")
        include[source] = ["*", *(f"{source}:{code}" for code in refs)]
        for code in refs:
            targets = registry.params_for(source)[code].targets or types
            for target in targets:
                if target in revinclude:
                    revinclude[target].append(f"{source}:{code}")
    return include, revinclude


def _resource(resource_type: str, include: list[str], revinclude: list[str]) -> dict:
    refused = APPEND_ONLY.get(resource_type, frozenset())
    interactions = [code for code in TYPE_INTERACTIONS if code not in refused]
    writable = "update" not in refused
    return {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": writable,
        "conditionalCreate": True,
        "conditionalRead": "full-support",
        "conditionalUpdate": writable,
        "conditionalDelete": "single" if "delete" not in refused else "not-supported",
        "searchInclude": include,
        "searchRevInclude": sorted(revinclude),
        "searchParam": _search_params(get_registry().params_for(resource_type)),
    }


def _place_operations(rest: dict, resources: list[dict]) -> None:
    """Declare type and instance operations on the resources that take them."""
    by_type = {r["type"]: r for r in resources}
    for op in rest.get("operation", []):
        placed = TYPE_OPERATIONS.get(op.get("definition", ""))
        if placed is None:
            continue
        name, types = placed
        for t in types or tuple(by_type):
            if t in by_type:
                by_type[t].setdefault("operation", []).append({"name": name, "definition": op["definition"]})


def capability_statement(base: str, extra: dict[str, Any] | None = None) -> dict:
    """The server's CapabilityStatement; ``extra`` merges into rest[0] (security, interactions, operations)."""
    include, revinclude = _includes(SUPPORTED_TYPES)
    resources = [_resource(t, include[t], revinclude[t]) for t in SUPPORTED_TYPES]
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "interaction": [{"code": "history-system"}],
        # Parameters every type has: those a search across types (GET [base]?_type=...) takes.
        "searchParam": _search_params({k: p for k, p in get_registry().params_for("Patient").items()
                                       if k.startswith("_")}),
        "compartment": [PATIENT_COMPARTMENT],
    }
    rest.update(extra or {})
    _place_operations(rest, resources)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Relais",
        "kind": "instance",
        "software": {"name": "Relais", "version": "0.1.0"},
        "implementation": {"description": "Relais FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": list(FORMATS),
        "patchFormat": list(PATCH_FORMATS),
        "rest": [rest],
    }


def current_statement() -> dict:
    """The CapabilityStatement of the running app (with what its blueprints and auth added)."""
    extra = current_app.extensions.get("relais_capability_extra", {})
    return capability_statement(base_url(), extra)


@capability.get("/metadata")
def metadata() -> Response:
    return fhir_response(current_statement())
