"""The ACK of a message: MSH with sender and receiver swapped, MSA, and an ERR when it is not AA. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from hl7apy.base_datatypes import ST, TX
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException

from .er7 import SUPPORTED_VERSIONS, Header
from .problems import CODES, Problem

# ERR-2/ERR-3 exist from v2.5; before that ERR-1 (ELD) carries the location and the code
_ERR_LOCATION_VERSIONS = ("2.3", "2.3.1", "2.4")
# MSA-3 (text message) is withdrawn from v2.7: hl7apy refuses a value there, ERR-8 carries the text
_MSA_3_WITHDRAWN = ("2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")


def acknowledge(header: Header | None, code: str, problem: Problem | None = None, *,
                ack_id: str, now: datetime | None = None) -> str:
    """The ACK (ER7, segments separated by CR) answering ``header``'s message with ``code`` (AA, AE, AR)."""
    header = header or Header()
    version = header.version if header.version in SUPPORTED_VERSIONS else "2.5"
    ack = Message("ACK", version=version, validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = ack.msh
    # the sender's own HD values, as it sent them (already ER7), go back swapped
    for number, raw in ((3, header.receiving_application), (4, header.receiving_facility),
                        (5, header.sending_application), (6, header.sending_facility)):
        if raw:
            _set(msh, f"msh_{number}", raw)
    msh.msh_7 = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    msh.msh_9 = f"ACK^{header.trigger}^ACK" if header.trigger else "ACK"
    msh.msh_10 = ST(ack_id)
    # PT is a composite: only its processing id (P, D, T) goes back
    msh.msh_11 = "".join(c for c in header.processing_id if c.isalnum())[:1] or "P"
    msh.msh_12 = version
    ack.msa.msa_1 = code
    if header.control_id:
        ack.msa.msa_2 = ST(header.control_id)
    if problem is not None:
        if version not in _MSA_3_WITHDRAWN:
            ack.msa.msa_3 = ST(problem.text[:80])  # MSA-3 text message: read by receivers older than v2.5
        _error(ack, version, problem)
    return ack.to_er7()


def _set(segment, name: str, raw: str) -> None:
    try:
        setattr(segment, name, raw)
    except HL7apyException:
        pass  # a value hl7apy will not take back is left out of the ACK rather than failing it


def _error(ack, version: str, problem: Problem) -> None:
    err = ack.add_segment("ERR")
    label = CODES.get(problem.code, "Application internal error")
    if version in _ERR_LOCATION_VERSIONS:
        # ELD: segment^sequence^field^code&text&table
        location = (problem.location or "MSH^1").split("^")
        while len(location) < 3:
            location.append("")
        _set(err, "err_1", "^".join(location[:3]) + f"^{problem.code}&{label}&HL70357")
        return
    if problem.location:
        _set(err, "err_2", problem.location)
    _set(err, "err_3", f"{problem.code}^{label}^HL70357")
    err.err_4 = "E"
    err.err_8 = TX(problem.text[:250])
