"""The resource-type registry and validation against the fhir.resources R4B models."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from . import limits
from .bindings import check_required_bindings
from .errors import FHIRError, issue

# Adding a type is one line; the CapabilityStatement and the routes follow this tuple.
SUPPORTED_TYPES: tuple[str, ...] = (
    "Patient",
    "Observation",
    "Condition",
    "MedicationRequest",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "CareTeam",
    "Encounter",
    "Device",
    "QuestionnaireResponse",
    "Communication",
    "Flag",
    "Task",
    "DetectedIssue",
    "DocumentReference",
    "Composition",
    "Binary",
    "List",
    "Subscription",
    "AuditEvent",
    "Provenance",
    "CarePlan",
    "Goal",
    "Group",
    "SearchParameter",
    "StructureDefinition",
    "DiagnosticReport",
    "Procedure",
    "Immunization",
    "Claim",
    "ExplanationOfBenefit",
)

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def is_supported(resource_type: str) -> bool:
    return resource_type in _SUPPORTED


_SUPPORTED = frozenset(SUPPORTED_TYPES)


def valid_id(value: Any) -> bool:
    """A FHIR logical id: 1 to 64 of [A-Za-z0-9-.]."""
    return isinstance(value, str) and bool(_ID.match(value))


def rewrite_references(node: object, resolve: Callable[[str], str]) -> None:
    """Replace, in place, every ``reference`` string under ``node`` by ``resolve(reference)``."""
    # The hot loop of a large transaction: nothing but the walk and the call.
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                node[key] = resolve(value)
            elif isinstance(value, (dict, list)):
                rewrite_references(value, resolve)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                rewrite_references(item, resolve)


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def validate(resource: Any, expected_type: str | None = None) -> None:
    """Raise FHIRError (400 or 422) unless ``resource`` is a valid R4 resource of a supported type."""
    if not isinstance(resource, dict):
        raise FHIRError(400, "The body is not a JSON object", code="structure")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FHIRError(400, "The body has no resourceType", code="structure", expression=["resourceType"])
    if expected_type is not None and resource_type != expected_type:
        raise FHIRError(
            400,
            f"resourceType {resource_type!r} does not match the URL's type {expected_type!r}",
            code="invalid",
            expression=["resourceType"],
        )
    if not is_supported(resource_type):
        raise FHIRError(400, f"Resource type {resource_type!r} is not supported here", code="not-supported")
    if "id" in resource and not valid_id(resource["id"]):
        raise FHIRError(400, f"Invalid id {resource['id']!r}", code="invalid", expression=[f"{resource_type}.id"])
    limits.check(resource)  # before the model: its cost grows with the size of the resource
    try:
        _model(resource_type).model_validate(resource)
    except ValidationError as exc:
        paths = [(_path(resource_type, err["loc"]), err["msg"]) for err in exc.errors(include_url=False)]
        issues = [issue("error", "invalid", f"{path}: {msg}", [path]) for path, msg in paths]
        raise FHIRError(422, issues[0]["diagnostics"], code="invalid", issues=issues) from None
    except Exception as exc:  # noqa: BLE001
        # Some malformed inputs fail inside the model library rather than as a ValidationError
        # (an unknown contained resourceType raises KeyError): they are still the client's error.
        raise FHIRError(422, f"{resource_type}: invalid content ({type(exc).__name__}: {exc})"[:500],
                        code="invalid") from None
    check_required_bindings(resource)


def _path(resource_type: str, loc: tuple) -> str:
    """A pydantic location as a FHIRPath expression: ('component', 0, 'code') -> X.component[0].code."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part and not str(part).startswith(("function-", "model-")):
            path += f".{part}"
    return path
