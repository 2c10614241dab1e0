"""HTTP details of the FHIR REST API: content negotiation, bodies, headers, FHIR responses."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl

from flask import Request, Response, current_app, g, request

from .. import fhirjson
from ..errors import FHIRError, issue, operation_outcome
from ..store.base import StoredVersion
from ..subscriptions.masking import masked

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
_JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir", "text/json"}
_JSON_FORMATS = _JSON_TYPES | {"json"}
_XML_TYPES = {"application/fhir+xml", "application/xml", "application/xml+fhir", "text/xml", "xml"}
_FORM = "application/x-www-form-urlencoded"
_NDJSON_TYPES = {"application/fhir+ndjson", "application/ndjson"}


def negotiate(req: Request) -> None:
    """Raise 406 unless the client accepts JSON, 415 unless a body it sends is JSON."""
    fmt = req.args.get("_format")
    if fmt is not None:
        base = fmt.split(";")[0].strip().lower()
        if base not in _JSON_FORMATS:
            kind = "XML" if base in _XML_TYPES else f"_format={fmt}"
            raise FHIRError(406, f"{kind} is not supported: this server speaks {FHIR_JSON}", code="not-supported")
    elif (accept := req.headers.get("Accept")) and accept not in _JSON_TYPES:
        # MIMEAccept gives each type its quality, wildcards included (*/*, application/*); a plain
        # JSON type, what clients send, is taken as is (parsing it was ~4% of a read's CPU).
        offered = _JSON_TYPES | (_NDJSON_TYPES if "/$export-file/" in req.path else set())
        if not any(req.accept_mimetypes[t] for t in offered):
            raise FHIRError(406, f"Accept {accept!r} cannot be met: this server speaks {FHIR_JSON}",
                            code="not-supported")
    if req.method in ("POST", "PUT", "PATCH") and req.content_length != 0 and req.mimetype:
        allowed = _JSON_TYPES | ({JSON_PATCH, MERGE_PATCH} if req.method == "PATCH" else set())
        if req.method == "POST" and req.path.endswith("/_search"):
            allowed = allowed | {_FORM}
        if req.mimetype not in allowed:
            raise FHIRError(415, f"Content-Type {req.mimetype!r} is not supported; send {FHIR_JSON}",
                            code="not-supported")


def json_body(req: Request) -> object:
    """The parsed JSON body; 400 for empty, undecodable or malformed JSON, or an object that repeats a key."""
    raw = req.get_data(cache=True)
    if not raw:
        raise FHIRError(400, "The request has no body", code="structure")
    try:
        return fhirjson.parse_body(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise FHIRError(400, "The body is not UTF-8", code="structure") from None
    except fhirjson.DuplicateKey as exc:
        raise FHIRError(400, f"The body names the key {exc.key!r} twice in one object: which one is meant is "
                        "undefined", code="structure") from None
    except (ValueError, RecursionError) as exc:
        raise FHIRError(400, f"The body is not valid JSON: {str(exc)[:200]}", code="structure") from None


def prefer(req: Request) -> dict[str, str]:
    """The Prefer header as a dict: {'return': 'minimal', 'handling': 'strict', ...}."""
    values: dict[str, str] = {}
    for part in req.headers.get("Prefer", "").split(","):
        for token in part.split(";"):
            name, _, value = token.strip().partition("=")
            if name:
                values[name.strip().lower()] = value.strip().strip('"')
    return values


def parse_etag(value: str | None, header: str) -> int | None:
    """``W/"3"`` -> 3; None when absent; 400 when malformed."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not is_whole(text):
        raise FHIRError(400, f"{header}: {value!r} is not a version ETag like W/\"3\"", code="invalid")
    return int(text)


def is_whole(text: str) -> bool:
    """ASCII digits that fit a 64-bit integer (str.isdigit alone accepts '²' and overflows SQLite)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def query_pairs(query: str) -> list[tuple[str, str]]:
    """A query string (If-None-Exist, conditional URLs) as (name, value) pairs."""
    return parse_qsl(query.lstrip("?"), keep_blank_values=True)


def base_url() -> str:
    """The FHIR base URL (RELAIS_BASE_URL): fullUrl, Location and paging links start with it."""
    return current_app.config["RELAIS"].base_url


def http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)


def etag(version: int) -> str:
    return f'W/"{version}"'


def version_headers(stored: StoredVersion) -> dict[str, str]:
    return {"ETag": etag(stored.version), "Last-Modified": http_date(stored.last_updated)}


def _viewer() -> str | None:
    """The client a response is for (None with authentication off): it alone sees its Subscriptions' headers."""
    caller = g.get("caller")
    if caller is None:
        return None
    return getattr(caller, "client_id", None) or ""


def fhir_response(body: dict | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON response (an empty body when ``body`` is None)."""
    # fhirjson writes decimals back as they were sent (0.10, not 0.1)
    if body is not None:
        body = masked(body, _viewer())
    data = b"" if body is None else fhirjson.dumps(body, pretty=request.args.get("_pretty") == "true")
    response = Response(data, status=status, headers=headers or {})
    response.headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
    return response


def error_response(exc: FHIRError) -> Response:
    return fhir_response(exc.outcome(), exc.status, exc.headers)


def outcome_response(status: int, severity: str, code: str, text: str) -> Response:
    return fhir_response(operation_outcome([issue(severity, code, text)]), status)


def job_accepted(kind: str, label: str, job_id: str) -> Response:
    """202 for a kicked-off ``$<kind>`` job: the scheduler's runner woken (when this process has one), and
    ``Content-Location`` pointing at ``$<kind>-status/<id>``."""
    wakeup = current_app.extensions.get(f"relais_{kind}_wakeup")
    if wakeup is not None:
        wakeup()
    text = f"{label} {job_id} accepted: poll the Content-Location URL"
    body = operation_outcome([issue("information", "informational", text)])
    return fhir_response(body, 202, {"Content-Location": f"{base_url()}/${kind}-status/{job_id}"})
