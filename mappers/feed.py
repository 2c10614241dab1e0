"""The shared feed ingest: what every partner feed does with one received payload, around its pure mapper.

1. a payload with a key (``FeedMapper.identify``) claims it with a "processing" record before anything can
   fail; every payload, keyed or not, is kept with its raw text, sender and answer whatever happens (4.);
2. a resend of a key already accepted gets the same answer and writes nothing; another payload under
   that key is kept apart and refused; a key another attempt is still processing is answered "busy";
3. map it (pure), resolve conditional ids, decide every change with the caller's scopes, write all of
   it in one call to the write path;
4. record the outcome, the reason and the versions written (durably: in the changes' own commit when they
   are written), audit, and only then answer.

A record is accepted exactly when its ``reason`` is None. The partner's part is in mappers/partner.py.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import auth
from auth.audit import append_events, now_instant
from fhir_server import limits, write
from fhir_server.errors import FHIRError
from fhir_server.ids import new_id
from fhir_server.resources import with_references
from fhir_server.search.query import SearchQuery

from .partner import (
    AMBIGUOUS,
    BUSY,
    FORBIDDEN,
    INTERNAL,
    KEY_REUSED,
    NOT_STORED,
    REASSIGNED,
    Answer,
    Answering,
    FeedMapper,
    Identity,
    Mapped,
    Problem,
    decode_text,
    verdict,
)

IN_PROGRESS_S = 60.0  # a record still "processing" after this is a crashed attempt: the resend takes over
_WRITE_ATTEMPTS = 2  # a second try re-resolves ids another writer created in between

log = logging.getLogger(__name__)

__all__ = [
    "AMBIGUOUS", "BUSY", "FORBIDDEN", "INTERNAL", "KEY_REUSED", "NOT_STORED", "REASSIGNED", "Answer", "Answering",
    "FeedMapper",
    "Identity", "Mapped", "Outcome", "Problem", "Source", "audit_refused", "decode_text", "ingest", "records",
    "refuse_unread", "verdict",
]


@dataclass(frozen=True)
class Source:
    """Where a payload came from: the transport, the peer's address, the OAuth client it acts for."""

    transport: str  # mllp | http
    address: str | None
    client_id: str | None = None


@dataclass
class Outcome:
    """What ``ingest`` did: the answer to send and the record kept for it."""

    answer: Any
    record: dict


@dataclass(frozen=True)
class _Context:
    """One payload being ingested: the feed, the caller, where it came from, and what it says it is."""

    store: Any
    feed: FeedMapper
    actor: auth.Caller | None
    source: Source
    base_url: str
    identity: Identity


def ingest(store, feed: FeedMapper, raw: bytes, actor: auth.Caller | None, source: Source,
           base_url: str) -> Outcome:
    """Process one payload of ``feed`` and return its answer; the record is durably stored before this returns.

    ``actor`` is the caller whose scopes decide every change (None: authentication is off).
    """
    received = now_instant()
    text = feed.decode(raw)
    ctx = _Context(store, feed, actor, source, base_url, _identify(feed, text))
    identity = ctx.identity
    key = _record_key(identity, received)
    record = {
        "received": received,
        "transport": source.transport,
        "source": source.address,
        "client_id": source.client_id,
        "sender": identity.sender,
        **identity.facts,
        "state": "processing",
        "attempts": 1,
        "raw": text,
    }
    earlier = store.kv_get(feed.table, key) if identity.key else None
    claimed = False  # the record under ``key`` is this attempt's: its failure is recorded there
    mapped = Mapped()
    decisions: list[tuple] = []
    results: list[write.Result] = []
    try:
        if earlier is not None:
            again = _again(ctx, key, earlier, record)
            if again is not None:
                return again
            record["attempts"] = int(earlier.get("attempts", 1)) + 1
            _keep_attempt(ctx, key, earlier)
            store.kv_put(feed.table, key, record, durable=False)
        # an unkeyed payload's key is new: nothing can race it or resend under it, so its record is written
        # once, with its answer (a process killed before that leaves the sender without an answer: it resends)
        elif identity.key and not store.kv_insert(feed.table, key, record, durable=False):
            # the same payload on another connection at this very moment: that one will answer for it
            return _busy(ctx, key, record)
        claimed = True
        # not durable yet: until it is answered the sender keeps the payload, so a power cut here loses nothing
        kept: list[Outcome] = []

        def keep(txn, written: list[write.Result]) -> None:
            # the record of a message whose changes are written, with its answer, in the write's own commit:
            # stored exactly when they are, and one lock and one sync for both
            record["written"] = _versions(written)
            kept[:] = [_completed(ctx, key, record, _answering(ctx, mapped, written), None)]
            txn.kv_put(feed.table, key, kept[0].record)

        try:
            mapped = _map(ctx, text, key)
            problem = mapped.problem
            if problem is None:
                problem, decisions, results = _store(ctx, mapped, keep)
        except Exception:  # a store failure: answer "retry later" with the payload kept, if the store can
            log.exception("%s message %s could not be stored", feed.label, key)
            problem = Problem(INTERNAL, "internal error while storing the message; send it again later", retry=True)
        if problem is None and kept:
            outcome = kept[0]
        else:
            record["written"] = _versions(results)
            outcome = _answer(ctx, key, record, _answering(ctx, mapped, results), problem)
    except Exception:
        # whatever failed, the payload is kept with the failure as its outcome: no record stays "processing"
        # after its request, and a resend is processed again (a failure is never the stored answer)
        log.exception("%s message %s failed while being processed", feed.label, key)
        problem = Problem(INTERNAL, "internal error while processing the message; send it again later", retry=True)
        mapped, decisions = Mapped(), []
        outcome = _answer(ctx, key if claimed else f"{key}|failed|{new_id()}", record, identity.answer, problem)
    try:
        _audit(ctx, outcome.record, mapped.changes, problem, decisions, results)
    except Exception:  # answered and recorded: a failed audit must not lose the answer
        log.exception("could not audit %s message %s", feed.label, key)
    return outcome


def _versions(results: list[write.Result]) -> list[str]:
    """The versions a message wrote, as its record lists them."""
    return [f"{r.resource_type}/{r.id}/_history/{r.version.version}" for r in results
            if r.version and r.outcome != "exists"]


def _answering(ctx: _Context, mapped: Mapped, results: list[write.Result]) -> Answering:
    """How the message is answered: from what was written when its mapper answers so (``written_answer``)."""
    if mapped.written_answer is not None:
        written_answer = mapped.written_answer
        return lambda problem: written_answer(problem, results)
    return mapped.answer or ctx.identity.answer


def _keep_attempt(ctx: _Context, key: str, earlier: dict) -> None:
    """The earlier attempt at ``key`` stays where an operator finds it, under ``<key>|attempt|<received>``.

    One that never ended (the server stopped mid-way) is kept as failed, with the answer it would have had.
    """
    if earlier.get("state") == "processing":
        problem = Problem(INTERNAL, "this attempt ended without an answer (the server stopped while processing"
                                    " it); a later attempt took its place", retry=True)
        answer = _answering_safely(ctx.identity.answer, problem)
        earlier = {**earlier, "state": "done", "outcome": answer.outcome,
                   "reason": answer.reason or problem.as_dict(), "ack": answer.body}
        earlier.setdefault("written", [])
    ctx.store.kv_put(ctx.feed.table, f"{key}|attempt|{earlier.get('received', new_id())}", earlier, durable=False)


def _identify(feed: FeedMapper, text: str) -> Identity:
    try:
        return feed.identify(text)
    except Exception:  # identify must not raise; if it does, the payload is kept unkeyed all the same
        log.exception("%s: the sender and key of a message could not be read", feed.label)
        return feed.identify("")


def _map(ctx: _Context, text: str, key: str) -> Mapped:
    try:
        return ctx.feed.map(text)
    except Exception:  # a payload this mapper did not foresee is a failure to look at, never a crash
        log.exception("%s message %s could not be mapped", ctx.feed.label, key)
        return Mapped(problem=Problem(INTERNAL, "the message could not be mapped (see the server log)", retry=True))


def _record_key(identity: Identity, received: str) -> str:
    """The key of a record: its sender and key (unique per sender), or a fresh one when it has none."""
    if identity.key:
        return f"{identity.sender}|{identity.key}"
    return f"unkeyed|{received}|{new_id()}"


def _again(ctx: _Context, key: str, earlier: dict, record: dict) -> Outcome | None:
    """The answer to a key seen before, or None when the payload should be processed again."""
    if earlier.get("state") == "processing":
        age = _age_s(earlier.get("received", ""))
        if age is not None and age < IN_PROGRESS_S:
            return _busy(ctx, key, record)
        return None  # a crashed attempt: nothing was answered, take it over
    if earlier.get("reason") is not None:
        return None  # refused or failed before: nothing was written, so trying again cannot write twice
    if earlier.get("raw") != record["raw"]:
        # a key is unique per sender: another payload under it is a second message, kept apart
        problem = Problem(KEY_REUSED, f"key {ctx.identity.key!r} was already used by another message of this"
                                      " sender", status=400)
        outcome = _answer(ctx, f"{key}|duplicate|{new_id()}", record, ctx.identity.answer, problem)
        _audit(ctx, outcome.record, [], problem, [], [])
        return outcome
    # the stored answer is an answer about writes: a caller who may not make them gets a refusal of its own
    mapped = _map(ctx, record["raw"], key)
    # a conditional create finds what the accepted attempt found or made: it writes nothing now either
    found = [{} if c.action == write.CREATE and c.condition is not None else None for c in mapped.changes]
    problem, decisions = _decide_all(ctx.actor, mapped.changes, mapped.sources, found)
    if problem is not None:
        outcome = _answer(ctx, f"{key}|refused|{new_id()}", record, mapped.answer or ctx.identity.answer, problem)
        _audit(ctx, outcome.record, mapped.changes, problem, decisions, [])
        return outcome
    _append(ctx, [_facts(ctx, interaction=_interaction(ctx.feed), status=200,
                         message=f"{_summary(ctx.feed, earlier)} (sent again: stored answer returned, nothing"
                                 " written)")])
    return Outcome(earlier["ack"], earlier)


def _busy(ctx: _Context, key: str, record: dict) -> Outcome:
    """"Retry later" for a payload whose first attempt is still running: that attempt keeps and answers it."""
    busy = Problem(BUSY, "the same message is being processed; resend later", retry=True)
    outcome = _answer(ctx, key, record, ctx.identity.answer, busy, store_it=False)
    _audit(ctx, outcome.record, [], busy, [], [])
    return outcome


def _age_s(instant: str) -> float | None:
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (datetime.now(UTC) - moment).total_seconds()


# ---- decide and write: the two calls into auth and the write path ------------------------------------


def _decide(actor: auth.Caller | None, change: write.Change, current: dict | None) -> str | None:
    """Why ``actor`` may not make ``change`` (None: it may); ``current`` is the version it would replace."""
    return auth.refusal(actor, change.action, change.resource_type, change.resource, current)


def _write(store, changes: list[write.Change], actor: auth.Caller | None, guard: write.Guard | None = None,
           then: write.Then | None = None) -> list[write.Result]:
    """All of a message's changes in one call to the write path, written as ``actor``."""
    return write.write(store, changes, actor, guard=guard, then=then)


def _decide_all(actor: auth.Caller | None, changes: list[write.Change], sources: list[str],
                currents: list[dict | None]) -> tuple[Problem | None, list[tuple]]:
    """Every change decided before anything is written; the first refusal stops the message."""
    decisions = []
    for change, source, current in zip(changes, sources, currents, strict=True):
        if _found(change, current):
            continue  # a conditional create that found its match writes nothing: nothing to decide
        refusal = _decide(actor, change, current)
        decisions.append((change.action, change.resource_type, refusal))
        if refusal is not None:
            return Problem(FORBIDDEN, f"not authorized to {change.action} {change.resource_type}: {refusal}",
                           source), decisions
    return None, decisions


def _store(ctx: _Context, mapped: Mapped, then: write.Then) -> tuple[Problem | None, list[tuple], list[write.Result]]:
    """Resolve, decide, then write all of the message's changes in one call to the write path, or none.

    Decisions see the resolved ids, so an update is checked against the resource it would replace. A
    conditional create that found its match is not written (its result says "exists"); one that found none
    is written as a plain create, its condition checked again inside the write's transaction (``guard``).
    The results are the changes', in their order; ``then`` gets them inside the write's transaction.
    """
    problem = _beyond_limits(mapped)
    if problem is not None:
        return problem, [], []
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            changes, currents, seen, creates = _resolved(ctx.store, mapped, ctx.feed.stable_ids)
        except Problem as problem:
            if problem.reason == REASSIGNED and attempt + 1 < _WRITE_ATTEMPTS:
                continue  # its subject may have been created meanwhile, after it was resolved: look again
            return problem, [], []
        problem, decisions = _decide_all(ctx.actor, changes, mapped.sources, currents)
        if problem is not None:
            return problem, decisions, []
        writing = [i for i, (c, current) in enumerate(zip(changes, currents, strict=True)) if not _found(c, current)]

        def merged(written: list[write.Result], changes=changes, writing=writing) -> list[write.Result]:
            """The results of every change: those written, and "exists" for a conditional create that matched."""
            results = [write.Result(200, "exists", None, c.resource_type, c.id) for c in changes]
            for i, result in zip(writing, written, strict=True):
                results[i] = result
            return results

        try:
            written = _write(ctx.store, [changes[i] for i in writing], ctx.actor, _guard(seen, creates),
                             lambda txn, written: then(txn, merged(written)))
        except write.Stale:
            if attempt + 1 < _WRITE_ATTEMPTS:
                continue  # a conditional change matches otherwise than when resolved (a create raced): again
            return Problem(NOT_STORED, "other messages changed the same resources meanwhile: send it again",
                           retry=True), decisions, []
        except FHIRError as exc:
            index = getattr(exc, "change_index", None)
            index = writing[index] if isinstance(index, int) and index < len(writing) else None
            raced = exc.status == 400 and "differs from the match" in exc.diagnostics
            if raced and attempt + 1 < _WRITE_ATTEMPTS:
                continue  # another message created the same Patient or Encounter meanwhile: resolve again
            source = mapped.sources[index] if index is not None else ""
            retry = exc.status == 409 or exc.status >= 500  # too many concurrent writers: not the message's fault
            return Problem(NOT_STORED, f"could not be stored: {exc.diagnostics}"[:250], source, retry), decisions, []
        return None, decisions, merged(written)
    raise AssertionError("unreachable")


def _found(change: write.Change, current: dict | None) -> bool:
    """A conditional create that found its match: nothing to write, nothing to decide."""
    return change.action == write.CREATE and change.condition is not None and current is not None


def _guard(seen: list[tuple], creates: list[SearchQuery]) -> write.Guard | None:
    """Inside the write's transaction, Stale (and the ingest resolves again) when a conditional change matches
    otherwise than when it was resolved: a conditional create that found nothing would else find what another
    message created meanwhile, and references to its new id would name nothing. The creates resolved as new
    are checked together, one search per type (a batch of new measures)."""
    if not seen and not creates:
        return None

    def guard(txn) -> None:
        for condition, ids in seen:
            if sorted(write.condition_matches(txn, condition)) != sorted(ids):
                raise write.Stale()
        for query in _combined(creates):
            if write.condition_matches(txn, query):
                raise write.Stale()

    return guard


def _combined(conditions: list[SearchQuery]) -> list[SearchQuery]:
    """Conditions of one clause on the same type ORed into one query (50 measures, one search); others alone."""
    merged: dict[str, list] = {}
    alone = []
    for condition in conditions:
        if len(condition.clauses) == 1:
            merged.setdefault(condition.resource_type, []).extend(condition.clauses[0])
        else:
            alone.append(condition)
    return [SearchQuery(rtype, (tuple(predicates),)) for rtype, predicates in merged.items()] + alone


def _beyond_limits(mapped: Mapped) -> Problem | None:
    """A change larger than the size limits (fhir_server.limits) is refused before it is copied, decided,
    validated or written: what the write path would refuse, found in one cheap walk. A change its mapper
    validated was walked then (``resources.validate`` checks the limits first)."""
    for change, source in zip(mapped.changes, mapped.sources, strict=True):
        if change.validated:
            continue
        try:
            limits.check(change.resource)
        except FHIRError as exc:
            return Problem(NOT_STORED, f"could not be stored: {exc.diagnostics}"[:250], source, status=exc.status)
    return None


def _resolved(store, mapped: Mapped, stable_ids: bool = False) -> tuple[list[write.Change], list[dict | None],
                                                                       list[tuple], list[SearchQuery]]:
    """The changes with each conditional one's provisional id replaced by the stored match (or a new id), the
    version each would replace (None for a new resource), what each condition matched (``seen``), and the
    conditions of the creates resolved new.

    A conditional create resolved new becomes a plain create (its index extracted before the write's lock);
    its condition goes to the guard with ``seen``: a race is caught inside the write's transaction, not written.
    """
    unmatched = _unmatched_creates(store, mapped.changes)
    changes = [dataclasses.replace(c) for c in mapped.changes]
    currents: list[dict | None] = []
    creates: list[SearchQuery] = []
    renamed: dict[str, str] = {}
    seen: list[tuple] = []
    for index, (change, source) in enumerate(zip(changes, mapped.sources, strict=True)):
        if change.condition is None:
            replaced = change.action != write.CREATE and change.id is not None
            currents.append(_current(store, change.resource_type, change.id) if replaced else None)
            continue
        ids = [] if index in unmatched else write.condition_matches(store, change.condition)
        if ids or change.action != write.CREATE:
            seen.append((change.condition, ids))
        if len(ids) > 1:
            raise Problem(AMBIGUOUS, f"several {change.resource_type} resources have the identifier of {source}:"
                                     " an operator must merge them first", source, retry=True)
        target = ids[0] if ids else _new_id(store, change, stable_ids)
        current = _current(store, change.resource_type, target) if ids else None
        if current is not None:
            _same_subject(store, change, current, target, renamed, source)
        currents.append(current)
        if not ids and change.action == write.CREATE:
            creates.append(change.condition)
            change.condition = None
        if target != change.id:
            renamed[f"{change.resource_type}/{change.id}"] = f"{change.resource_type}/{target}"
        change.id = target
    if renamed or any(c.resource and c.resource.get("id") != c.id for c in changes if c.id):
        # references and ids are rewritten in copies: the mapped changes stay as mapped for another attempt
        for change in changes:
            change.resource = with_references(change.resource, lambda reference: renamed.get(reference, reference))
            if change.resource is not None and change.id is not None and change.action in (write.CREATE,
                                                                                          write.UPDATE):
                change.resource["id"] = change.id
    for change, current in zip(changes, currents, strict=True):
        carry = getattr(change, "carry", None)  # a mapper's merge of what its payload leaves unchanged
        if carry is not None and current is not None:
            change.resource = carry(current, change.resource)
            change.validated = False
    return changes, currents, seen, creates


def _unmatched_creates(store, changes: list[write.Change]) -> set[int]:
    """The conditional creates that surely match nothing, found with one search per type: those of a payload
    of new measures are all of them. One that may match (the combined search found something) is searched
    alone by the caller."""
    pending = [(i, c.condition) for i, c in enumerate(changes)
               if c.action == write.CREATE and c.condition is not None and len(c.condition.clauses) == 1]
    unmatched: set[int] = set()
    for rtype in {condition.resource_type for _, condition in pending}:
        group = [(i, condition) for i, condition in pending if condition.resource_type == rtype]
        if len(group) > 1 and not write.condition_matches(store, _combined([c for _, c in group])[0]):
            unmatched.update(i for i, _ in group)
    return unmatched


def _new_id(store, change: write.Change, stable_ids: bool) -> str:
    """The id of a conditional change that matched nothing: a new one; with ``stable_ids`` (FeedMapper), a create
    keeps the mapper's (so two payloads racing on one new patient make one resource, on every backend), unless a
    deleted resource holds it."""
    if stable_ids and change.action == write.CREATE and change.id and store.read(change.resource_type,
                                                                                  change.id) is None:
        return change.id
    return new_id()


def _current(store, resource_type: str, id: str | None) -> dict | None:
    stored = store.read(resource_type, id) if id else None
    return stored.resource if stored is not None and not stored.deleted else None


def _same_subject(store, change: write.Change, current: dict, target: str, renamed: dict[str, str],
                  source: str) -> None:
    """A resource found by its identifier stays with its subject: a reused identifier must not move it,
    unless its subject was merged into the new one (Patient.link replaced-by: a visit goes on)."""
    subject = ((change.resource or {}).get("subject") or {}).get("reference")
    if subject is None:
        return
    stored = (current.get("subject") or {}).get("reference")
    new = renamed.get(subject, subject)
    if stored is not None and stored != new and not _replaced_by(store, stored, new):
        raise Problem(REASSIGNED, f"{change.resource_type}/{target} has the identifier of {source} but another"
                                  f" subject ({stored}): the identifier was reused", source)


def _replaced_by(store, reference: str, successor: str) -> bool:
    """Whether the Patient ``reference`` names was merged into ``successor`` (its link replaced-by)."""
    kind, _, rid = reference.partition("/")
    stored = _current(store, kind, rid) if kind == "Patient" and rid else None
    return any(link.get("type") == "replaced-by" and (link.get("other") or {}).get("reference") == successor
               for link in (stored or {}).get("link") or [])


def _answer(ctx: _Context, key: str, record: dict, answering: Answering, problem: Problem | None,
            store_it: bool = True) -> Outcome:
    """The answer, with the record completed and durably stored before it is returned."""
    outcome = _completed(ctx, key, record, answering, problem)
    if store_it:
        ctx.store.kv_put(ctx.feed.table, key, outcome.record)
    return outcome


def _completed(ctx: _Context, key: str, record: dict, answering: Answering, problem: Problem | None) -> Outcome:
    """The answer, and ``record`` completed with it (not stored)."""
    try:
        answer = answering(problem)
    except Exception:  # the partner's answer could not be built: the failure is the answer, recorded
        log.exception("%s: the answer to message %s could not be built", ctx.feed.label, key)
        problem = Problem(INTERNAL, "internal error while answering the message; send it again later", retry=True)
        answer = _answering_safely(ctx.identity.answer, problem)
    record = dict(record)
    record.update(
        state="done",
        outcome=answer.outcome,
        reason=None if problem is None else answer.reason or problem.as_dict(),
        answered=now_instant(),
        ack=answer.body,
    )
    record.setdefault("written", [])
    return Outcome(answer.body, record)


def _answering_safely(answering: Answering, problem: Problem) -> Answer:
    """``answering(problem)``, or, should that fail too, a bare answer naming the verdict and the reason."""
    try:
        return answering(problem)
    except Exception:
        log.exception("the answer to a failed message could not be built")
        return Answer(None, verdict(problem), problem.as_dict())


def refuse_unread(store, feed: FeedMapper, start: bytes, source: Source, base_url: str, problem: Problem,
                  status: int) -> Outcome:
    """Keep the start of a payload refused before it was read whole (too large) with its answer, and audit it.

    Not read whole, it is not identified: its record names no sender and takes no key.
    """
    received = now_instant()
    text = feed.decode(start)
    identity = _identify(feed, text)
    ctx = _Context(store, feed, None, source, base_url, identity)
    record = {"received": received, "transport": source.transport, "source": source.address,
              "client_id": source.client_id, "sender": None, **dict.fromkeys(identity.facts), "raw": text,
              "truncated": True}
    outcome = _answer(ctx, f"unkeyed|{received}|{new_id()}", record, identity.answer, problem)
    audit_refused(store, feed, source, base_url, status, problem.text)
    return outcome


def records(store, feed: FeedMapper, rejected_only: bool = False) -> list[tuple[str, dict]]:
    """The stored records of ``feed``, oldest first (``rejected_only``: those refused or failed)."""
    found = [(key, doc) for key, doc in store.kv_list(feed.table)
             if not rejected_only or doc.get("reason") is not None]
    return sorted(found, key=lambda item: item[1].get("received", ""))


# ---- audit -----------------------------------------------------------------------------------------


def _interaction(feed: FeedMapper) -> str:
    return f"operation:{feed.name}"


def _facts(ctx: _Context, **facts) -> dict:
    return _source_facts(ctx.feed, ctx.source, ctx.base_url, **facts)


def _source_facts(feed: FeedMapper, source: Source, base_url: str, **facts) -> dict:
    return dict(recorded=now_instant(), server_base=base_url, client_id=source.client_id,
                client_label=f"{feed.label} over {source.transport}", client_address=source.address,
                event_id=new_id(), **facts)


def _summary(feed: FeedMapper, record: dict) -> str:
    return f"{feed.label} {feed.describe(record)}: {record.get('outcome')}"


def _audit(ctx: _Context, record: dict, changes: list[write.Change], problem: Problem | None,
           decisions: list[tuple], results: list[write.Result]) -> None:
    """The AuditEvents of one message: what it wrote (by interaction), what was refused, or why it was not."""
    events = []
    summary = _summary(ctx.feed, record)
    patients = sorted({r.id for r in results if r.resource_type == "Patient" and r.id})
    refused = [d for d in decisions if d[2] is not None]
    # a conditional create that found its match stored nothing: no AuditEvent of a create for it
    written = [(r, c) for r, c in zip(results, changes, strict=False) if r.outcome != "exists"]
    if written:
        by_interaction: dict[str, list[write.Result]] = {}
        for result, change in written:
            by_interaction.setdefault(change.action, []).append(result)
        for interaction, group in by_interaction.items():
            targets = [(r.resource_type, r.id, str(r.version.version) if r.version else None) for r in group]
            first, rest = targets[0], targets[1:]
            events.append(_facts(ctx, interaction=interaction, status=201 if interaction == write.CREATE else 200,
                                 resource_type=first[0], resource_id=first[1], version=first[2], targets=rest,
                                 patients=patients, message=summary))
    elif refused:
        interaction, rtype, message = refused[0]
        events.append(_facts(ctx, interaction=interaction, status=403, resource_type=rtype,
                             message=f"{summary}: {message}"))
    else:
        status = 200 if problem is None else problem.status
        text = f"{summary}: {problem.text}" if problem is not None else summary
        events.append(_facts(ctx, interaction=_interaction(ctx.feed), status=status, message=text))
    _append(ctx, events)


def audit_refused(store, feed: FeedMapper, source: Source, base_url: str, status: int, message: str) -> None:
    """One AuditEvent for a message or a connection refused before it was read (401, 403, 413, 415)."""
    _append_to(store, feed, [_source_facts(feed, source, base_url, interaction=_interaction(feed), status=status,
                                           message=message)])


def _append(ctx: _Context, events: list[dict]) -> None:
    _append_to(ctx.store, ctx.feed, events)


def _append_to(store, feed: FeedMapper, events: list[dict]) -> None:
    try:
        append_events(store, events)
    except Exception:  # the message is stored and its answer is due: a failed audit append must not lose it
        log.exception("could not queue the AuditEvents of a %s message", feed.label)
