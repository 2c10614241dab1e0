"""Why a message cannot be stored: an HL7 error code (table 0357), the ACK code, where in the message."""

from __future__ import annotations

from mappers import partner

# HL7 table 0357 (message error condition codes) used by the feed
CODES = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    104: "Value too long",  # from v2.7
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}

# The shared ingest's own problems in HL7 terms: error code, ACK code, and where (None: where the ingest says)
_INGEST = {
    partner.BUSY: (206, "AE", "MSH^1^10"),
    partner.KEY_REUSED: (205, "AR", "MSH^1^10"),
    partner.FORBIDDEN: (207, "AR", None),
    partner.AMBIGUOUS: (205, "AE", None),
    partner.REASSIGNED: (205, "AE", None),
    partner.NOT_STORED: (207, "AE", None),
    partner.INTERNAL: (207, "AE", None),
}


class Problem(partner.Problem):
    """A message the feed does not store: ``ack`` AE (understood, not storable) or AR (not processable)."""

    def __init__(self, code: int, text: str, location: str = "", ack: str = "AE"):
        # location: ERL, segment^sequence^field (OBX^2^5); the AuditEvent of an AR says 400, of an AE 422
        super().__init__(f"hl7v2-{code}", text, location, status=422 if ack == "AE" else 400)
        self.code = code
        self.ack = ack

    def as_dict(self) -> dict:
        return {"ack": self.ack, "code": self.code, "text": self.text, "location": self.location}


def as_hl7(problem: partner.Problem | None) -> Problem | None:
    """``problem`` in HL7 terms: a mapper's as it is, one of the shared ingest's by the table above."""
    if problem is None or isinstance(problem, Problem):
        return problem
    code, ack, location = _INGEST.get(problem.reason, (207, "AE", None))
    return Problem(code, problem.text, problem.location if location is None else location, ack)
