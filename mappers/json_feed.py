"""What the JSON partner feeds (telemonitoring, teleconsultation, report) share: reading a payload against its
JSON Schema, naming the field at fault, stable ids for what a feed finds or creates, and answers as HTTP
status plus JSON body. Pure: no store, no socket, no clock (the caller passes ``Context.now``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from fhir_server import write
from fhir_server.errors import FHIRError
from fhir_server.resources import validate
from fhir_server.search.parser import parse
from fhir_server.search.query import Predicate, SearchQuery

from . import partner
from .partner import Answer, Problem

# Identifier systems Relais mints for what a partner names in its own terms (a device, a measure, a report)
IDENTIFIERS = "https://relais.example/fhir/sid/feeds"
INVALID = "invalid"  # the payload is not JSON or does not match the feed's schema: 400
# HTTP status of the ingest's own problems; a partner's problems carry theirs (Problem.status)
_STATUS = {partner.FORBIDDEN: 403, partner.BUSY: 503, partner.INTERNAL: 503, partner.KEY_REUSED: 409,
           partner.AMBIGUOUS: 409, partner.REASSIGNED: 409}
_ISSUE_CODE = {400: "invalid", 403: "forbidden", 404: "not-found", 409: "conflict", 413: "too-costly",
               422: "processing", 503: "transient"}


@dataclass(frozen=True)
class Context:
    """What a JSON feed's mapper knows besides the payload: who sent it, when it came, which identifier
    systems the sender registered for its patients (None: any, authentication is off)."""

    sender: str
    now: datetime
    patient_systems: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Checker:
    """A schema's validators: ``full`` (jsonschema, the reference: it names the field at fault) and ``fast``
    (jsonschema-rs, 100 times quicker, None where it is not installed) that lets a valid payload through."""

    full: Draft202012Validator
    fast: Any = None

    def errors(self, doc: Any) -> ValidationError | None:
        """The most relevant error of ``doc`` (None: valid)."""
        if self.fast is not None and self.fast.is_valid(doc):
            return None
        return best_match(self.full.iter_errors(doc))


def validator(schema: dict) -> Checker:
    """The validators of ``schema`` (checked once, at import), with format checks (date-time)."""
    Draft202012Validator.check_schema(schema)
    full = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        import jsonschema_rs
    except ImportError:
        return Checker(full)
    return Checker(full, jsonschema_rs.validator_for(schema, validate_formats=True))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; RFC 8259 has neither


def document(text: str) -> Any:
    """The JSON of ``text``, or None when it is not JSON (NaN, Infinity and nesting too deep included)."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None


def read(text: str, checker: Checker) -> dict:
    """The payload of ``text`` checked against its schema; raise a 400 Problem naming the field at fault."""
    doc = document(text)
    if doc is None:
        raise Problem(INVALID, "the payload is not JSON", status=400)
    error = checker.errors(doc)
    if error is not None:
        where = field_of(error)
        raise Problem(INVALID, f"{where or 'the payload'}: {_message(error)}"[:300], where, status=400)
    where = _unpaired_surrogate(doc, "")
    if where is not None:
        raise Problem(INVALID, f"{where}: a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)", where,
                      status=400)
    return doc


def field_of(error: ValidationError) -> str:
    """Where ``error`` is, as a path (``measures[2].time``); a missing or extra property is named itself."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        path += missing[:1]
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema or {}).get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        path += extra[:1]
    elif error.validator in ("anyOf", "oneOf") and not path and isinstance(error.instance, dict):
        # the payload lacks all of its alternatives (text, or questionnaire and answers): name the first
        first = (error.validator_value or [{}])[0].get("required", [])
        path += [name for name in first if name not in error.instance][:1]
    return path_text(path)


def path_text(path: list) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: ValidationError) -> str:
    if error.validator in ("anyOf", "oneOf"):
        branches = error.validator_value or []
        if branches and all(set(b) == {"required"} for b in branches):
            return "required: one of " + "; ".join(" and ".join(b["required"]) for b in branches)
        return "matches none of the accepted forms (see the feed's schema)"
    return error.message


def _unpaired_surrogate(node: Any, where: str) -> str | None:
    """A string that no UTF-8 store can keep (``"\\ud83d"`` alone) is bad input, found before it fails a write."""
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return where or "the payload"
        return None
    if isinstance(node, dict):
        items = [(f"{where}.{k}" if where else str(k), v) for k, v in node.items()]
    elif isinstance(node, list):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(node)]
    else:
        return None
    for place, value in items:
        found = _unpaired_surrogate(value, place)
        if found is not None:
            return found
    return None


# ---- ids and conditional changes -----------------------------------------------------------------------------


def stable_id(resource_type: str, *parts: str) -> str:
    """The id a feed gives a resource it creates for a business identifier: the same identifier, the same id.

    Two feeds racing on the same new patient (or device, or measure) then write the same resource: the store's
    version uniqueness lets one of them create it and the other find it, on every backend, with or without
    transactions. A digest, so no identifier (an INS) shows in URLs.
    """
    digest = hashlib.sha256("\x1f".join((resource_type, *parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def sender_system(sender: str, *kind: str) -> str:
    """The identifier system of what ``sender`` names in its own terms (``device``, ``measure``...)."""
    return "/".join((IDENTIFIERS, quote(sender, safe=""), *(quote(k, safe="") for k in kind)))


def find_or_create(resource: dict, identifiers: list[dict], where: str) -> write.Change:
    """A conditional create (If-None-Exist) of ``resource`` on any of ``identifiers``: found, it writes nothing.

    ``resource["id"]`` is its stable id, which its references use until the ingest resolves the match.
    """
    rtype = resource["resourceType"]
    predicate = _identifier_predicate(rtype)
    condition = SearchQuery(rtype, (tuple(dataclasses.replace(predicate, values=(i["system"], i["value"]))
                                          for i in identifiers),))
    return write.Change(write.CREATE, rtype, id=resource["id"], resource=resource, condition=condition)


@functools.cache
def _identifier_predicate(resource_type: str) -> Predicate:
    """``identifier=system|value`` as the search parser compiles it for ``resource_type``, once: a batch of 50
    measures builds 50 conditions (parsing each took 50 us)."""
    (clause,) = parse(resource_type, [("identifier", "urn:x|x")], strict=True).clauses
    return clause[0]


def checked(change: write.Change, where: str) -> write.Change:
    """``change`` with its resource validated here, so that a fault names the payload's field, not the write."""
    try:
        validate(change.resource, change.resource_type)
    except FHIRError as exc:
        at = ", ".join(exc.expression) or change.resource_type
        raise Problem(INVALID, f"{where} gives an invalid {change.resource_type} ({at}): {exc.diagnostics}"[:300],
                      where, status=400) from None
    change.validated = True
    return change


# ---- answers -------------------------------------------------------------------------------------------------


def status_of(problem: Problem | None) -> int:
    """The HTTP status a problem is answered with (200: stored)."""
    if problem is None:
        return 200
    return _STATUS.get(problem.reason, problem.status)


def operation_outcome(problem: Problem) -> dict:
    """The OperationOutcome of ``problem``: its text, and the field at fault as the issue's expression."""
    status = status_of(problem)
    issue: dict = {"severity": "error", "code": _ISSUE_CODE.get(status, "processing"),
                   "details": {"text": problem.reason}, "diagnostics": problem.text}
    if problem.location and problem.reason != partner.FORBIDDEN:  # a scope is about a type, not a field
        issue["expression"] = [problem.location]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def http_answer(status: int, body: dict, outcome: str, problem: Problem | None = None) -> Answer:
    """An Answer a JSON transport sends as ``status`` and ``body`` (a resend is given the same)."""
    return Answer({"status": status, "body": body}, outcome, None if problem is None else problem.as_dict())


def problem_answer(problem: Problem | None, stored: Callable[[], dict] | None = None) -> Answer:
    """The answer to ``problem``: an OperationOutcome with its status; None: ``stored()`` (200)."""
    if problem is None:
        return http_answer(200, stored() if stored else {}, "accepted")
    return http_answer(status_of(problem), operation_outcome(problem), partner.verdict(problem), problem)


def feed_mapper(name: str, table: str, map_payload: Callable[..., partner.Mapped],
                context: Context) -> partner.FeedMapper:
    """The JSON feed ``name`` for one caller (its sender name and registered systems) at one moment: payloads
    kept in ``table``, keyed by sender and payload id, and patients created under stable ids."""
    return partner.FeedMapper(name=name, label=name, table=table,
                              identify=functools.partial(identity, sender=context.sender),
                              map=functools.partial(map_payload, context=context), stable_ids=True)


def identity(text: str, sender: str) -> partner.Identity:
    """The sender (the caller) and key (the payload's ``id``, when it has one) of a JSON payload."""
    doc = document(text)
    key = doc.get("id") if isinstance(doc, dict) else None
    key = key if isinstance(key, str) and 0 < len(key) <= 200 else None
    return partner.Identity(sender, key, problem_answer, {"id": key})


def reference(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
