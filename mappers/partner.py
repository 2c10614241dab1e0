"""What a partner feed hands the shared ingest (mappers/feed.py): data and three pure functions.

A partner (HL7 v2, telemonitoring, teleconsultation, complaints) is a ``FeedMapper``:

- ``identify(text)``: who sent the payload and under which key, read before anything else, so the raw
  payload is kept under that key before mapping can fail; and how to answer it (``Identity.answer``);
- ``map(text)``: the changes to write (``Mapped``), or the ``Problem`` that stops them;
- ``table``: where its records go.

An answer is built from one of three verdicts: accepted (no problem), refused with a reason, or
failed, retry later (``Problem.retry``). The ingest meets some problems of its own (busy, a key reused,
a change the caller may not make...); a partner names them in its own terms (HL7 v2: table 0357).
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhir_server import write

# The problems the ingest itself runs into (``Problem.reason``)
BUSY = "busy"  # another attempt is processing the same key: retry
KEY_REUSED = "key-reused"  # another payload under a key already answered: refused
FORBIDDEN = "forbidden"  # the caller's scopes do not allow one of the changes: refused
AMBIGUOUS = "ambiguous"  # several stored resources match a conditional change: retry once an operator merged them
REASSIGNED = "reassigned"  # a conditional change would move a stored resource to another subject: refused
NOT_STORED = "not-stored"  # the write path refused the changes (an invalid resource, a conflict)
INTERNAL = "internal"  # the mapper or the store failed: retry


class Problem(Exception):
    """Why a payload is not stored: ``reason`` (one of the above, or the partner's own), ``text``,
    ``location`` (where in the payload, e.g. OBX^2 or items[3]), ``retry`` (failed, not refused) and
    ``status``, the HTTP status its AuditEvent records: 422 understood but not stored, 400 not processable."""

    def __init__(self, reason: str, text: str, location: str = "", retry: bool = False, status: int = 422):
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.location = location
        self.retry = retry
        self.status = status

    def as_dict(self) -> dict:
        """How a record keeps it (a partner may keep its own shape, see ``Answer.reason``)."""
        return {"reason": self.reason, "text": self.text, "location": self.location, "retry": self.retry}


def verdict(problem: Problem | None) -> str:
    """``accepted``, ``refused`` or ``failed`` (send it again later): the three answers every feed gives."""
    if problem is None:
        return "accepted"
    return "failed" if problem.retry else "refused"


@dataclass(frozen=True)
class Answer:
    """What the sender is told (``body``: an ER7 ACK, a JSON document), and how the record shows it."""

    body: Any  # kept in the record (JSON-able): a resend is given the same
    outcome: str  # the partner's word for the verdict: AA/AE/AR, accepted/refused/failed
    reason: dict | None = None  # default: ``problem.as_dict()``; always None when accepted


Answering = Callable[[Problem | None], Answer]
# An answer that names what was written: the problem (None: written) and the write's results, one per change
AnsweringWritten = Callable[[Problem | None, list[write.Result]], Answer]


@dataclass(frozen=True)
class Identity:
    """What a payload says about itself before it is mapped."""

    sender: str | None
    key: str | None  # unique per sender; None: a payload that cannot be recognised when it comes again
    answer: Answering  # the answer to give when nothing finer is known (busy, a key reused, unmappable)
    facts: dict = field(default_factory=dict)  # more for its record (HL7 v2: control_id, type)


@dataclass
class Mapped:
    """What a payload asks for: ``changes`` (all written or none), or the ``problem`` that stops it."""

    changes: list[write.Change] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # where each change comes from: error locations
    problem: Problem | None = None
    answer: Answering | None = None  # finer than the identity's (per-item results); None: the identity's
    # finer still: given the write's results too (created or already there, under which id); wins over ``answer``
    written_answer: AnsweringWritten | None = None


def decode_text(raw: bytes) -> str:
    """UTF-8 text, else Latin-1 (which any byte decodes): the raw payload is always kept as text."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def describe_record(record: dict) -> str:
    """The default words for a record in audit texts: who sent it."""
    return f"message from {record.get('sender') or '?'}"


@dataclass(frozen=True)
class FeedMapper:
    """One partner format: how to read, map and answer its payloads, and where its records go."""

    name: str  # its AuditEvents' subtype is operation:<name>
    label: str  # how audit texts and logs name it ("HL7 v2")
    table: str  # the store table of its records (raw payload, outcome, reason, versions written, answer)
    identify: Callable[[str], Identity]  # pure, never raises
    map: Callable[[str], Mapped]  # pure: no store, no socket, no clock
    decode: Callable[[bytes], str] = decode_text
    describe: Callable[[dict], str] = describe_record  # a record in audit texts (the outcome is appended)
    # a conditional create that matches nothing is stored under the id the mapper gave it (its stable id),
    # not a new one: two payloads racing on one new resource then store one, with or without transactions
    stable_ids: bool = False
