"""The HL7 v2 feed on the shared ingest (mappers/feed.py): what is HL7 v2 about receiving a message.

Its sender and key are MSH-3/MSH-4 and MSH-10 (a control id is unique per sender); its answer is an
ACK (AA, AE or AR); its records stay in ``hl7v2_messages``, which ``relais hl7v2`` and operators read.
"""

from __future__ import annotations

import logging

import auth
from fhir_server.ids import new_id
from mappers import feed
from mappers.feed import Outcome, Source

from .ack import acknowledge
from .er7 import Header, msh_header
from .mapper import map_message
from .problems import as_hl7

TABLE = "hl7v2_messages"

log = logging.getLogger(__name__)

__all__ = ["FEED", "TABLE", "Outcome", "Source", "audit_refused", "decode", "identify", "receive", "records",
           "refuse_oversized", "unprocessed"]

decode = feed.decode_text  # UTF-8 (IHE PAM France's UNICODE UTF-8), else Latin-1 (8859/1)


def answering(header: Header | None) -> feed.Answering:
    """The ACK answering ``header``'s message: AA when accepted, else the problem's AE or AR with an ERR."""

    def answer(problem: feed.Problem | None) -> feed.Answer:
        found = as_hl7(problem)
        code = found.ack if found else "AA"
        ack = acknowledge(header, code, found, ack_id=new_id().replace("-", "")[:20])
        return feed.Answer(ack, code, found.as_dict() if found else None)

    return answer


def identify(text: str) -> feed.Identity:
    """The sender (MSH-3, MSH-4) and control id (MSH-10) of ``text``, read from its MSH alone."""
    head = msh_header(text)
    return feed.Identity(
        sender=head.sender if head else None,
        key=head.control_id if head else None,
        answer=answering(head),
        facts={"control_id": head.control_id if head else None, "type": head.message_type if head else None},
    )


def _describe(record: dict) -> str:
    return f"{record.get('type') or '(unreadable)'} {record.get('control_id') or ''} from {record.get('sender') or '?'}"


FEED = feed.FeedMapper(name="hl7v2", label="HL7 v2", table=TABLE, identify=identify, map=map_message,
                       decode=decode, describe=_describe)


def receive(store, raw: bytes, caller: auth.Caller | None, source: Source, base_url: str) -> Outcome:
    """Process one message and return its ACK (``outcome.answer``); the record is durably stored first."""
    try:
        return feed.ingest(store, FEED, raw, caller, source, base_url)
    except Exception:  # the store itself failed: nothing could be recorded, the sender keeps the message
        log.exception("HL7 v2 message from %s could not be processed", source.address)
        return Outcome(unprocessed(raw), {})


def unprocessed(raw: bytes) -> str:
    """The AE (207, send it again later) of a message that could not even be recorded."""
    try:
        head = msh_header(decode(raw))
    except Exception:  # the MSH alone did not read: the ACK answers no header
        head = None
    problem = feed.Problem(feed.INTERNAL, "the message could not be recorded (the server's store failed); send"
                                          " it again later", retry=True)
    return answering(head)(problem).body


def refuse_oversized(store, start: bytes, source: Source, base_url: str, problem: feed.Problem) -> Outcome:
    """The AR of a message too large to read whole: its start is kept with the reason, and audited (413)."""
    try:
        return feed.refuse_unread(store, FEED, start, source, base_url, problem, 413)
    except Exception:
        log.exception("an oversized HL7 v2 message from %s could not be recorded", source.address)
        return Outcome(answering(None)(problem).body, {})


def audit_refused(store, source: Source, base_url: str, status: int, message: str) -> None:
    """One AuditEvent for a message or a connection refused before it was read (401, 403, 413, 415)."""
    feed.audit_refused(store, FEED, source, base_url, status, message)


def records(store, rejected_only: bool = False) -> list[tuple[str, dict]]:
    """The stored messages, oldest first (``rejected_only``: those answered AE or AR)."""
    return feed.records(store, FEED, rejected_only)
