"""$validate on a type and an instance: an OperationOutcome listing every issue, with its path; and the
kick-off, status and cancellation of $reindex (the job itself is fhir_server.reindex, run by the scheduler).

The base profile is the fhir.resources R4B model and R4's required bindings (``bindings.py``).
A profile whose StructureDefinition is in the store is checked for its cardinalities (min, max)
from the snapshot, else the differential.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from .. import reindex
from ..bindings import binding_issues
from ..errors import FHIRError, issue, operation_outcome
from ..export import jobs
from ..limits import LimitExceeded
from ..resources import SUPPORTED_TYPES, fully_validated, validate
from ..search.query import SearchQuery
from ..store.base import Store
from .http import fhir_response, job_accepted, json_body
from .rest import allow, check_id, check_type, store

operations = Blueprint("fhir_operations", __name__)

_BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
_MODES = ("create", "update", "delete")


def _arguments(body: object) -> tuple[dict | None, str | None, list[str]]:
    """(resource, mode, profiles) from a resource body or a Parameters body."""
    if not isinstance(body, dict):
        raise FHIRError(400, "The body is not a JSON object", code="structure")
    if body.get("resourceType") != "Parameters":
        return body, request.args.get("mode"), request.args.getlist("profile")
    resource, mode, profiles = None, request.args.get("mode"), request.args.getlist("profile")
    parameters = body.get("parameter", [])
    if not isinstance(parameters, list):
        raise FHIRError(400, "Parameters.parameter is a JSON array", code="structure",
                        expression=["Parameters.parameter"])
    for i, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            raise FHIRError(400, f"Parameters.parameter[{i}] is not an object", code="structure")
        name = parameter.get("name")
        if name == "resource":
            resource = parameter.get("resource")
            if not isinstance(resource, dict):
                raise FHIRError(400, "The resource parameter carries no resource", code="required",
                                expression=[f"Parameters.parameter[{i}].resource"])
        elif name == "mode":
            mode = parameter.get("valueCode") or parameter.get("valueString")
        elif name == "profile":
            value = parameter.get("valueUri") or parameter.get("valueCanonical") or parameter.get("valueString")
            if isinstance(value, str):
                profiles.append(value)
    return resource, mode, profiles


def find_profile(st: Store, url: str) -> dict | None:
    """The stored StructureDefinition whose url (and version, ``url|version``) is ``url``."""
    wanted, _, version = url.partition("|")
    # StructureDefinitions are few: one page of them, compared here, needs no search parameter support.
    found = st.search(SearchQuery("StructureDefinition", count=10000, total="none"))
    for stored in st.read_many("StructureDefinition", found.ids):
        sd = stored.resource or {}
        if sd.get("url") == wanted and (not version or sd.get("version") == version):
            return sd
    return None


def _children(node: dict, name: str) -> list[tuple[str, object]]:
    """The values of element ``name`` in ``node`` (``value[x]`` matches valueQuantity, ...), keyed by name."""
    if name.endswith("[x]"):
        stem = name[:-3]
        keys = [k for k in node if k.startswith(stem) and k[len(stem):][:1].isupper()]
    else:
        keys = [name] if name in node else []
    values: list[tuple[str, object]] = []
    for key in keys:
        value = node[key]
        if isinstance(value, list):
            values.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
        else:
            values.append((key, value))
    return values


def profile_issues(resource: dict, sd: dict) -> list[dict]:
    """Cardinality issues of ``resource`` against the StructureDefinition ``sd``."""
    rtype = resource.get("resourceType")
    url = sd.get("url", "?")
    if sd.get("type") not in (None, rtype):
        return [issue("error", "invalid", f"Profile {url} is for {sd.get('type')}, not {rtype}", [str(rtype)])]
    elements = (sd.get("snapshot") or {}).get("element") or (sd.get("differential") or {}).get("element") or []
    issues: list[dict] = []
    for element in elements:
        path = element.get("path")
        if not isinstance(path, str) or element.get("sliceName") or ":" in str(element.get("id", "")):
            continue  # slices need discriminators: beyond this simple check
        parts = path.split(".")
        if len(parts) < 2 or parts[0] != rtype:
            continue
        parents: list[tuple[str, object]] = [(str(rtype), resource)]
        for name in parts[1:-1]:
            parents = [(f"{where}.{key}", value) for where, node in parents if isinstance(node, dict)
                       for key, value in _children(node, name)]
        minimum = element.get("min") or 0
        maximum = element.get("max")
        for where, node in parents:
            if not isinstance(node, dict):
                continue
            present = _children(node, parts[-1])
            count = len(present)
            # A choice element is reported under the name it has in the resource (deceasedBoolean).
            name = present[0][0].partition("[")[0] if present else parts[-1]
            target = f"{where}.{name}"
            if count < minimum:
                text = f"{target}: minimum cardinality {minimum} (profile {url}), found {count}"
                issues.append(issue("error", "required", text, [target]))
            if isinstance(maximum, str) and maximum.isdigit() and count > int(maximum):
                text = f"{target}: maximum cardinality {maximum} (profile {url}), found {count}"
                issues.append(issue("error", "structure", text, [target]))
    return issues


def validation_issues(st: Store, resource_type: str, id: str | None, resource: dict | None, mode: str | None,
                      profiles: list[str]) -> list[dict]:
    """Every issue $validate reports (an empty list: valid)."""
    if mode is not None and mode not in _MODES:
        raise FHIRError(400, f"mode {mode!r} is not one of create, update, delete", code="invalid")
    if mode == "delete":
        if id is None:
            raise FHIRError(400, "mode=delete applies to an instance: POST [type]/[id]/$validate", code="invalid")
        current = st.read(resource_type, id)
        if current is None or current.deleted:
            return [issue("error", "not-found", f"{resource_type}/{id} does not exist: nothing to delete")]
        return []
    if resource is None:
        raise FHIRError(400, "$validate needs a resource to validate", code="required")
    issues: list[dict] = []
    try:
        validate(resource, resource_type)
    except LimitExceeded:
        raise  # not a finding about the resource: the server does not process one this large
    except FHIRError as exc:
        issues.extend(exc.outcome()["issue"])
        if exc.status == 422 and exc.code != "code-invalid":
            issues.extend(binding_issues(resource))  # the structure failed first: still name every bad code
    if not fully_validated(resource_type):
        issues.append(issue("warning", "not-supported", f"{resource_type} has no R4 model here: only its Resource "
                                                        "and DomainResource elements were checked"))
    if mode == "update":
        if "id" not in resource:
            issues.append(issue("error", "required", "An update needs the resource id", [f"{resource_type}.id"]))
        elif id is not None and resource["id"] != id:
            issues.append(issue("error", "invalid", f"The id {resource['id']!r} differs from the URL ({id})",
                                [f"{resource_type}.id"]))
    declared = (resource.get("meta") or {}).get("profile") if isinstance(resource.get("meta"), dict) else None
    wanted = list(dict.fromkeys([*profiles, *(p for p in declared or [] if isinstance(p, str))]))
    for url in wanted:
        if url.partition("|")[0] == _BASE_PROFILE + resource_type:
            continue  # the base profile: checked by the model above
        sd = find_profile(st, url)
        if sd is None:
            severity = "error" if url in profiles else "warning"
            issues.append(issue(severity, "not-supported", f"Profile {url} is not known to this server"))
            continue
        issues.extend(profile_issues(resource, sd))
    return issues


def _validate(resource_type: str, id: str | None) -> Response:
    check_type(resource_type)
    if id is not None:
        check_id(id)
    allow("operation:validate", resource_type)
    resource, mode, profiles = _arguments(json_body(request))
    issues = validation_issues(store(), resource_type, id, resource, mode, profiles)
    if not issues:
        issues = [issue("information", "informational", "No issues: the resource is valid")]
    # 200 whether or not the resource is valid: the outcome is the answer of the operation.
    return fhir_response(operation_outcome(issues))


@operations.post("/<resource_type>/$validate")
def validate_type(resource_type: str) -> Response:
    return _validate(resource_type, None)


@operations.post("/<resource_type>/<id>/$validate")
def validate_instance(resource_type: str, id: str) -> Response:
    return _validate(resource_type, id)


def add_capability(app: Any, interactions: tuple[str, ...] = (), operations: tuple[tuple[str, str], ...] = ()) -> None:
    """Claim system interactions and operations (name, definition) in the CapabilityStatement's rest[0]."""
    extra = app.extensions.setdefault("relais_capability_extra", {})
    # rest.interaction replaces the default list: keep history-system in it.
    codes = [i["code"] for i in extra.get("interaction", [{"code": "history-system"}])]
    extra["interaction"] = [{"code": c} for c in dict.fromkeys([*codes, *interactions])]
    known = {o["name"] for o in extra.get("operation", [])}
    extra["operation"] = [*extra.get("operation", []),
                          *({"name": n, "definition": d} for n, d in operations if n not in known)]


@operations.post("/$reindex")
def reindex_operation() -> Response:
    """Start recomputing the index rows of ``_type`` (comma-separated), else of every supported type: 202 and
    a status URL (Content-Location) to poll, as $export does."""
    wanted = list(dict.fromkeys(t.strip() for t in request.args.get("_type", "").split(",") if t.strip()))
    for resource_type in wanted:
        check_type(resource_type)
    types = wanted or list(SUPPORTED_TYPES)
    _allow_reindex(types)
    job = reindex.create(store(), types, _caller_id())
    return job_accepted("reindex", "Reindex", job["id"])


def _allow_reindex(types: list[str]) -> None:
    # Decided type by type (one audit decision for them all): system/Patient.cu may reindex Patients.
    for resource_type in types:
        allow("operation:reindex", resource_type)


def _caller_id() -> str | None:
    return getattr(g.get("caller"), "client_id", None)


def _reindex_job(job_id: str) -> dict:
    """The job, if it exists and is not cancelled; who may start a reindex of its types may follow or cancel it."""
    job = reindex.get(store(), job_id)
    if job is None:
        raise FHIRError(404, f"No reindex {job_id}", code="not-found")
    _allow_reindex(job["types"])
    return job


@operations.get("/$reindex-status/<job_id>")
def reindex_status(job_id: str) -> Response:
    job = _reindex_job(job_id)
    if job["status"] in (jobs.ACCEPTED, jobs.RUNNING):
        return Response(status=202, headers={"X-Progress": reindex.progress(job), "Retry-After": "2"})
    if job["status"] == jobs.FAILED:
        text = "; ".join(job.get("error") or ["The reindex failed"])
        return fhir_response(operation_outcome([issue("error", "exception", text)]), 500)
    return fhir_response(operation_outcome([issue("information", "informational", reindex.summary(job))]))


@operations.delete("/$reindex-status/<job_id>")
def reindex_cancel(job_id: str) -> Response:
    _reindex_job(job_id)
    if not reindex.cancel(store(), job_id):
        raise FHIRError(404, f"No reindex {job_id}", code="not-found")
    return fhir_response(operation_outcome([issue("information", "informational", f"Reindex {job_id} cancelled")]),
                         202)


@operations.record_once
def _capability(state: Any) -> None:
    add_capability(state.app, operations=(("validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
                                          ("reindex", "http://relais.example/OperationDefinition/reindex")))
