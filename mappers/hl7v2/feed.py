"""The HL7 v2 feed: what both transports do with one received message (the I/O around the pure mapper).

1. keep the raw message (keyed by sender and MSH-10) before anything else;
2. a message already stored (same sender, same control id, same text) gets its stored ACK again;
3. map it, decide every change with ``auth.decide``, resolve conditional ids, write all of it in one call;
4. record the outcome, the reason and the ids written (durably), audit, and only then return the ACK.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import auth
from auth.audit import append_events, now_instant
from fhir_server import write
from fhir_server.errors import FHIRError
from fhir_server.ids import new_id
from fhir_server.resources import rewrite_references

from .mapper import Mapped, map_message
from .problems import Problem

TABLE = "hl7v2_messages"
IN_PROGRESS_S = 60.0  # a record still "processing" after this is a crashed attempt: the resend takes over
AUDIT_INTERACTION = "operation:hl7v2"
_WRITE_ATTEMPTS = 2  # a second try re-resolves ids another writer created in between

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """Where a message came from: the transport, the peer's address, the OAuth client it acts for."""

    transport: str  # mllp | http
    address: str | None
    client_id: str | None = None


@dataclass
class Outcome:
    """What ``receive`` did: the ACK to send and the record kept for it."""

    ack: str
    record: dict


def decode(raw: bytes) -> str:
    """The message text: UTF-8 (IHE PAM France's UNICODE UTF-8), else Latin-1 (8859/1), which any byte decodes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def receive(store, raw: bytes, caller: auth.Caller | None, source: Source, base_url: str, app=None) -> Outcome:
    """Process one message and return its ACK; the record is durably stored before this returns.

    ``app`` gives the access decisions the app context REST ones have (an update is checked against
    the version it replaces); a Flask request already has one.
    """
    received = now_instant()
    text = decode(raw)
    mapped = map_message(text)
    head = mapped.header
    key = record_key(head, received)
    record = {
        "received": received,
        "transport": source.transport,
        "source": source.address,
        "client_id": source.client_id,
        "sender": head.sender if head else None,
        "control_id": head.control_id if head else None,
        "type": head.message_type if head else None,
        "state": "processing",
        "attempts": 1,
        "raw": text,
    }
    earlier = store.kv_get(TABLE, key) if head and head.control_id else None
    if earlier is not None:
        again = _again(store, key, earlier, record, mapped, caller, source, base_url, app)
        if again is not None:
            return again
        record["attempts"] = int(earlier.get("attempts", 1)) + 1
        if earlier.get("state") == "done":
            # the refused attempt stays where an operator finds it; the new one takes the key
            store.kv_put(TABLE, f"{key}|attempt|{earlier.get('received', new_id())}", earlier, durable=False)
        store.kv_put(TABLE, key, record, durable=False)
    elif not store.kv_insert(TABLE, key, record, durable=False):
        # the same message on another connection at this very moment: that one will answer for it
        return _busy(store, key, record, mapped, source, base_url)
    # not durable yet: until the ACK the sender keeps the message, so a power cut here loses nothing
    decisions: list[tuple] = []
    results: list[write.Result] = []
    try:
        problem = mapped.problem
        if problem is None:
            problem, decisions, results = _store(store, mapped, caller, app)
    except Exception:  # a store failure: answer AE (send again later) with the message kept, if the store can
        log.exception("HL7 v2 message %s could not be stored", key)
        problem = Problem(207, "internal error while storing the message; send it again later", "", "AE")
    record["written"] = [f"{r.resource_type}/{r.id}/_history/{r.version.version}" for r in results if r.version]
    outcome = answer(store, key, record, mapped, problem)
    _audit(store, outcome.record, mapped, problem, decisions, results, source, base_url)
    return outcome


def record_key(head, received: str) -> str:
    """The key of a message: its sender and control id (unique per sender), or a fresh one when it has none."""
    if head is not None and head.control_id:
        return f"{head.sender}|{head.control_id}"
    return f"unkeyed|{received}|{new_id()}"


def _again(store, key: str, earlier: dict, record: dict, mapped: Mapped, caller: auth.Caller | None, source: Source,
           base_url: str, app) -> Outcome | None:
    """The answer to a control id seen before, or None when the message should be processed again."""
    if earlier.get("state") == "processing":
        age = _age_s(earlier.get("received", ""))
        if age is not None and age < IN_PROGRESS_S:
            return _busy(store, key, record, mapped, source, base_url)
        return None  # a crashed attempt: nothing was acknowledged, take it over
    if earlier.get("outcome") != "AA":
        return None  # refused or failed before: nothing was written, so trying again cannot write twice
    if earlier.get("raw") != record["raw"]:
        # a control id is unique per sender: another text under it is a second message, kept apart
        problem = Problem(205, f"control id {record['control_id']!r} was already used by another message of"
                               " this sender", "MSH^1^10", "AR")
        outcome = answer(store, f"{key}|duplicate|{new_id()}", record, mapped, problem)
        _audit(store, outcome.record, mapped, problem, [], [], source, base_url)
        return outcome
    # the stored ACK is an answer about writes: a caller who may not make them gets a refusal of its own
    with app.app_context() if app is not None else nullcontext():
        problem, decisions = _decide(caller, mapped, mapped.changes, store)
    if problem is not None:
        outcome = answer(store, f"{key}|refused|{new_id()}", record, mapped, problem)
        _audit(store, outcome.record, mapped, problem, decisions, [], source, base_url)
        return outcome
    _audit_resend(store, earlier, source, base_url)
    return Outcome(earlier["ack"], earlier)


def _busy(store, key: str, record: dict, mapped: Mapped, source: Source, base_url: str) -> Outcome:
    """AE 206 for a message whose first attempt is still running: that attempt keeps and answers it."""
    busy = Problem(206, "the same message is being processed; resend later", "MSH^1^10", "AE")
    outcome = answer(store, key, record, mapped, busy, store_it=False)
    _audit(store, outcome.record, mapped, busy, [], [], source, base_url)
    return outcome


def _age_s(instant: str) -> float | None:
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (datetime.now(UTC) - moment).total_seconds()


def _decide(caller: auth.Caller | None, mapped: Mapped,
            changes: list[write.Change], store) -> tuple[Problem | None, list[tuple]]:
    """Every change decided before anything is written; the first refusal stops the message (AR)."""
    decisions = []
    for change, source in zip(changes, mapped.sources, strict=True):
        interaction = "update" if change.condition is not None else "create"
        try:
            replaced = (write.replaced_body(store, change.resource_type, change.resource)
                        if auth.needs_replaced(caller, interaction, change.resource_type) else auth.UNREAD)
            auth.decide(caller, interaction, change.resource_type, change.resource, replaced)
        except auth.AccessDenied as exc:
            decisions.append((interaction, change.resource_type, exc.message))
            return Problem(207, f"not authorized to {interaction} {change.resource_type}: {exc.message}", source,
                           "AR"), decisions
        decisions.append((interaction, change.resource_type, None))
    return None, decisions


def _store(store, mapped: Mapped, caller: auth.Caller | None,
           app) -> tuple[Problem | None, list[tuple], list[write.Result]]:
    """Resolve, decide, then write all of the message's changes in one call to the write path, or none.

    Decisions see the resolved ids, so an update is checked against the resource it would replace.
    """
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            changes = _resolved(store, mapped)
        except Problem as problem:
            return problem, [], []
        with app.app_context() if app is not None else nullcontext():
            problem, decisions = _decide(caller, mapped, changes, store)
        if problem is not None:
            return problem, decisions, []
        try:
            return None, decisions, write.write(store, changes, caller)
        except FHIRError as exc:
            index = getattr(exc, "change_index", None)
            raced = exc.status == 400 and "differs from the match" in exc.diagnostics
            if raced and attempt + 1 < _WRITE_ATTEMPTS:
                continue  # another message created the same Patient or Encounter meanwhile: resolve again
            source = mapped.sources[index] if isinstance(index, int) and index < len(mapped.sources) else ""
            return Problem(207, f"could not be stored: {exc.diagnostics}"[:250], source, "AE"), decisions, []
    raise AssertionError("unreachable")


def _resolved(store, mapped: Mapped) -> list[write.Change]:
    """The changes with each conditional one's provisional id replaced by the stored match (or a new id).

    The write path checks the match again inside its transaction, so a race is caught, not written.
    """
    changes = [dataclasses.replace(c, resource=copy.deepcopy(c.resource)) for c in mapped.changes]
    renamed: dict[str, str] = {}
    for change, source in zip(changes, mapped.sources, strict=True):
        if change.condition is None:
            continue
        ids = write.condition_matches(store, change.condition)
        if len(ids) > 1:
            raise Problem(205, f"several {change.resource_type} resources have the identifier of {source}: an"
                               " operator must merge them first", source, "AE")
        target = ids[0] if ids else new_id()
        if ids:
            _same_subject(store, change, target, renamed, source)
        renamed[f"{change.resource_type}/{change.id}"] = f"{change.resource_type}/{target}"
        change.id = target
        assert change.resource is not None
        change.resource["id"] = target
    for change in changes:
        rewrite_references(change.resource, lambda reference: renamed.get(reference, reference))
    return changes


def _same_subject(store, change: write.Change, target: str, renamed: dict[str, str], source: str) -> None:
    """A result found by its identifier stays with its patient: a reused order number must not move it."""
    subject = ((change.resource or {}).get("subject") or {}).get("reference")
    if subject is None:
        return
    current = store.read(change.resource_type, target)
    stored = ((current.resource or {}).get("subject") or {}).get("reference") if current and current.resource else None
    if stored is not None and stored != renamed.get(subject, subject):
        raise Problem(205, f"{change.resource_type}/{target} has the identifier of {source} but another subject"
                           f" ({stored}): the order number was reused", source, "AE")


def answer(store, key: str, record: dict, mapped: Mapped, problem: Problem | None, store_it: bool = True) -> Outcome:
    """The ACK, with the record completed and durably stored before it is returned."""
    ack = mapped.ack(problem, ack_id=new_id().replace("-", "")[:20])
    record = dict(record)
    record.update(
        state="done",
        outcome=problem.ack if problem else "AA",
        reason=problem.as_dict() if problem else None,
        answered=now_instant(),
        ack=ack,
    )
    record.setdefault("written", [])
    if store_it:
        store.kv_put(TABLE, key, record)
    return Outcome(ack, record)


# ---- audit -----------------------------------------------------------------------------------------


def _facts(source: Source, base_url: str, **facts) -> dict:
    return dict(recorded=now_instant(), server_base=base_url, client_id=source.client_id,
                client_label=f"HL7 v2 over {source.transport}", client_address=source.address,
                event_id=new_id(), **facts)


def _summary(record: dict) -> str:
    return f"HL7 v2 {record.get('type') or '(unreadable)'} {record.get('control_id') or ''} from " \
           f"{record.get('sender') or '?'}: {record.get('outcome')}"


def _audit(store, record: dict, mapped: Mapped, problem: Problem | None, decisions: list[tuple],
           results: list[write.Result], source: Source, base_url: str) -> None:
    """The AuditEvents of one message: what it wrote (by interaction), what was refused, or why it was not."""
    events = []
    summary = _summary(record)
    patients = sorted({r.id for r in results if r.resource_type == "Patient" and r.id})
    refused = [d for d in decisions if d[2] is not None]
    if results:
        by_interaction: dict[str, list[write.Result]] = {}
        for result, change in zip(results, mapped.changes, strict=False):
            by_interaction.setdefault("update" if change.condition is not None else "create", []).append(result)
        for interaction, group in by_interaction.items():
            targets = [(r.resource_type, r.id, str(r.version.version) if r.version else None) for r in group]
            first, rest = targets[0], targets[1:]
            events.append(_facts(source, base_url, interaction=interaction, status=201 if interaction == "create"
                                 else 200, resource_type=first[0], resource_id=first[1], version=first[2],
                                 targets=rest, patients=patients, message=summary))
    elif refused:
        interaction, rtype, message = refused[0]
        events.append(_facts(source, base_url, interaction=interaction, status=403, resource_type=rtype,
                             message=f"{summary}: {message}"))
    else:
        status = 422 if problem is not None and problem.ack == "AE" else 400 if problem is not None else 200
        text = f"{summary}: {problem.text}" if problem is not None else summary
        events.append(_facts(source, base_url, interaction=AUDIT_INTERACTION, status=status, message=text))
    _append(store, events)


def _audit_resend(store, earlier: dict, source: Source, base_url: str) -> None:
    _append(store, [_facts(source, base_url, interaction=AUDIT_INTERACTION, status=200,
                           message=f"{_summary(earlier)} (sent again: stored ACK returned, nothing written)")])


def audit_refused(store, source: Source, base_url: str, status: int, message: str) -> None:
    """One AuditEvent for a message or a connection refused before it was read (401, 403, 413, 415)."""
    _append(store, [_facts(source, base_url, interaction=AUDIT_INTERACTION, status=status, message=message)])


def _append(store, events: list[dict]) -> None:
    try:
        append_events(store, events)
    except Exception:  # the message is stored and its ACK is due: a failed audit append must not lose it
        log.exception("could not queue the AuditEvents of an HL7 v2 message")


def records(store, rejected_only: bool = False) -> list[tuple[str, dict]]:
    """The stored messages, oldest first (``rejected_only``: those answered AE or AR)."""
    found = [(key, doc) for key, doc in store.kv_list(TABLE)
             if not rejected_only or doc.get("outcome") in ("AE", "AR")]
    return sorted(found, key=lambda item: item[1].get("received", ""))
