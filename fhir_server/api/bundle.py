"""POST /fhir: batch and transaction Bundles (the processing is in fhir_server.bundles)."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from .. import bundles
from ..errors import FHIRError
from .http import base_url, fhir_response, json_body, prefer
from .operations import add_capability
from .rest import acceptance, allow, config, may_replace, store
from .search import search_access, search_settings

bundle = Blueprint("fhir_bundle", __name__)


@bundle.post("")
@bundle.post("/")
def batch_or_transaction() -> Response:
    body = json_body(request)
    kind = body.get("type") if isinstance(body, dict) else None
    if kind in (bundles.BATCH, bundles.TRANSACTION):
        allow(kind, None)
    cfg = config()
    wanted = prefer(request).get("return", "minimal")
    if wanted not in ("minimal", "representation", "OperationOutcome"):
        raise FHIRError(400, f"Prefer: return={wanted} is not minimal, representation or OperationOutcome")
    options = bundles.Options(
        base=base_url(),
        max_entries=cfg.max_bundle_entries,
        default_count=cfg.default_count,
        max_count=cfg.max_count,
        prefer_return=wanted,
        allow=allow,
        access=search_access(),
        snapshot_max=cfg.search_snapshot_max,
        snapshot_lifetime_s=cfg.search_snapshot_lifetime_s,
        search_limits=search_settings().limits,
        actor=g.get("caller"),
        acceptance=acceptance(),
        replacing=may_replace,
        dangling=cfg.allow_dangling_references,
    )
    return fhir_response(bundles.process(store(), body, options))



@bundle.record_once
def _capability(state) -> None:
    add_capability(state.app, interactions=("batch", "transaction"))
