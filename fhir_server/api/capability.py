"""GET /fhir/metadata: a CapabilityStatement generated from the registries, claiming what is implemented."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from ..resources import SUPPORTED_TYPES
from .http import FHIR_JSON, base_url, fhir_response

capability = Blueprint("fhir_capability", __name__)

_TYPE_INTERACTIONS = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
                      "search-type"]


def _search_params(resource_type: str) -> list[dict]:
    from ..search.registry import get_registry

    params = get_registry().params_for(resource_type)
    return [
        {"name": code, "definition": getattr(p, "url", None) or f"http://hl7.org/fhir/SearchParameter/{code}",
         "type": p.type}
        for code, p in sorted(params.items())
        if getattr(p, "type", None) in {"number", "date", "string", "token", "reference", "composite", "quantity",
                                        "uri", "special"}
    ]


def capability_statement(base: str, extra: dict[str, Any] | None = None) -> dict:
    """The server's CapabilityStatement; ``extra`` merges into rest[0] (security, operations)."""
    resources = [
        {
            "type": t,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{t}",
            "interaction": [{"code": code} for code in _TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchParam": _search_params(t),
        }
        for t in SUPPORTED_TYPES
    ]
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "interaction": [{"code": "history-system"}],
    }
    rest.update(extra or {})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Relais",
        "kind": "instance",
        "software": {"name": "Relais", "version": "0.1.0"},
        "implementation": {"description": "Relais FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }


@capability.get("/metadata")
def metadata() -> Response:
    extra = current_app.extensions.get("relais_capability_extra", {})
    return fhir_response(capability_statement(base_url(), extra))
