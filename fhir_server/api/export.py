"""Bulk Data Access (FHIR Bulk Data IG v2): $export kick-off, status polling, cancellation, files.

The export itself runs in the background (fhir_server.export.runner, from the scheduler); its
state is in the store, so a restart loses no job.
"""

from __future__ import annotations

import re
import shutil
import time
from email.utils import formatdate

from flask import Blueprint, Response, current_app, g, request, send_file

from ..compartment import has_compartment
from ..errors import FHIRError, issue, operation_outcome
from ..export import jobs
from ..export.runner import KEEP_S, export_dir
from ..resources import SUPPORTED_TYPES, is_supported
from ..write import normalize_instant
from .http import base_url, fhir_response, job_accepted, prefer
from .operations import add_capability
from .rest import allow, check_id, config, store

export = Blueprint("fhir_export", __name__)

_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
_NOT_SUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData")
_FILE = re.compile(r"^[A-Za-z]+-\d+\.ndjson$")
_RETRY_AFTER_S = "2"


def _caller_id() -> str | None:
    caller = g.get("caller")
    return getattr(caller, "client_id", None)


def _types(level: str) -> list[str]:
    raw = ",".join(request.args.getlist("_type"))
    if level == "system":
        default = list(SUPPORTED_TYPES)
    else:
        # The Patient compartment: types whose resources can point at a patient.
        default = [t for t in SUPPORTED_TYPES if t == "Patient" or has_compartment(t)]
    if not raw:
        return default
    wanted = list(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    for t in wanted:
        if not is_supported(t):
            raise FHIRError(400, f"_type: {t!r} is not a resource type this server serves", code="not-supported")
        if t not in default:
            raise FHIRError(400, f"_type: {t} resources are not in the Patient compartment", code="invalid")
    return wanted


def _kick_off(level: str, group: str | None = None) -> Response:
    allow("operation:export", {"system": None, "patient": "Patient", "group": "Group"}[level])
    if prefer(request).get("respond-async") is None:
        raise FHIRError(400, "$export runs asynchronously: send Prefer: respond-async", code="invalid")
    fmt = request.args.get("_outputFormat")
    if fmt is not None and fmt not in _FORMATS:
        raise FHIRError(400, f"_outputFormat={fmt!r}: this server writes application/fhir+ndjson", code="not-supported")
    for name in _NOT_SUPPORTED:
        if name in request.args:
            raise FHIRError(400, f"{name} is not supported by this server's $export", code="not-supported")
    since = request.args.get("_since")
    if since is not None:
        try:
            since = normalize_instant(since)
        except ValueError:
            raise FHIRError(400, f"_since={since!r} is not an instant", code="invalid") from None
    types = _types(level)
    for t in types:
        allow("operation:export", t)
    if group is not None:
        check_id(group)
        found = store().read("Group", group)
        if found is None or found.deleted:
            raise FHIRError(404, f"Group/{group} is not known", code="not-found")
    job = jobs.create(
        store(), level=level, group=group, types=types, since=since, request=request.url, base=base_url(),
        owner=_caller_id(), requires_token=bool(config().auth),
    )
    return job_accepted("export", "Export", job["id"])


@export.get("/$export")
def export_system() -> Response:
    return _kick_off("system")


@export.get("/Patient/$export")
def export_patients() -> Response:
    return _kick_off("patient")


@export.get("/Group/<id>/$export")
def export_group(id: str) -> Response:
    return _kick_off("group", id)


def _owned_job(job_id: str) -> dict:
    """The job, if it exists, is not cancelled, and the caller is the client that asked for it."""
    allow("operation:export-status", None)
    job = jobs.get(store(), job_id)
    if job is None or jobs.is_cancelled(store(), job_id):
        raise FHIRError(404, f"No export {job_id}", code="not-found")
    if job.get("owner") != _caller_id():
        raise FHIRError(403, "This export belongs to another client", code="forbidden")
    return job


@export.get("/$export-status/<job_id>")
def status(job_id: str) -> Response:
    job = _owned_job(job_id)
    if job["status"] in (jobs.ACCEPTED, jobs.RUNNING):
        progress = f"{job['status']}: {job.get('exported', 0)} resources"
        return Response(status=202, headers={"X-Progress": progress, "Retry-After": _RETRY_AFTER_S})
    if job["status"] == jobs.FAILED:
        text = "; ".join(job.get("error") or ["The export failed"])
        return fhir_response(operation_outcome([issue("error", "exception", text)]), 500)
    manifest = {
        "transactionTime": job["transaction_time"],
        "request": job["request"],
        "requiresAccessToken": job["requires_token"],
        "output": job["output"],
        "error": [],
    }
    # The files are deleted KEEP_S after the export finished (runner.sweep).
    expires = formatdate(job.get("completed", time.time()) + KEEP_S, usegmt=True)
    return current_app.response_class(current_app.json.dumps(manifest), 200, mimetype="application/json",
                                      headers={"Expires": expires})


@export.delete("/$export-status/<job_id>")
def cancel(job_id: str) -> Response:
    job = _owned_job(job_id)
    if not jobs.cancel(store(), job_id):
        raise FHIRError(404, f"No export {job_id}", code="not-found")
    if job["status"] != jobs.RUNNING:
        # Nobody is writing its files: clean up now (a running job cleans up after itself).
        shutil.rmtree(export_dir(store(), config()) / job_id, ignore_errors=True)
        jobs.forget(store(), job_id)
    body = operation_outcome([issue("information", "informational", f"Export {job_id} cancelled")])
    return fhir_response(body, 202)


@export.get("/$export-file/<job_id>/<name>")
def download(job_id: str, name: str) -> Response:
    job = _owned_job(job_id)
    path = export_dir(store(), config()) / job_id / name
    if job["status"] != jobs.COMPLETED or not _FILE.match(name) or not path.is_file():
        raise FHIRError(404, f"No file {name} in export {job_id}", code="not-found")
    return send_file(path, mimetype="application/fhir+ndjson", conditional=False)


@export.record_once
def _capability(state) -> None:
    add_capability(state.app, operations=(
        ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"),
        ("patient-export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"),
        ("group-export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"),
    ))

