"""Why a message cannot be stored: an HL7 error code (table 0357), the ACK code, where in the message."""

from __future__ import annotations

# HL7 table 0357 (message error condition codes) used by the feed
CODES = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}


class Problem(Exception):
    """A message the feed does not store: ``ack`` AE (understood, not storable) or AR (not processable)."""

    def __init__(self, code: int, text: str, location: str = "", ack: str = "AE"):
        super().__init__(text)
        self.code = code
        self.text = text
        self.location = location  # ERL: segment^sequence^field, e.g. OBX^2^5
        self.ack = ack

    def as_dict(self) -> dict:
        return {"ack": self.ack, "code": self.code, "text": self.text, "location": self.location}
