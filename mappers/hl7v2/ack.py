"""The ACK of a message: MSH with sender and receiver swapped, MSA, and an ERR when it is not AA. Pure.

Each version gets MSA and ERR as it defines them (checked with hl7apy's strict validation in the tests):

- 2.3: MSH-9 has two components (message type, event); 2.3.1 added the message structure.
- 2.3 to 2.4: the error is ERR-1 (ELD: segment^sequence^field^code&text&table), and MSA-6 (error condition).
- 2.5 to 2.7.1: ERR-2 (location), ERR-3 (HL7 error code), ERR-4 (severity), ERR-8 (user message).
- 2.8 on: the same, ERR-1 withdrawn (hl7apy then writes ERR-2 in its place: the ERR is built at 2.7).
- MSA-3 (text message) up to 2.6: withdrawn from v2.7 (hl7apy refuses it).
- 2.7.1 is 2.7 for hl7apy (it has no 2.7.1 library): built at 2.7, MSH-12 says 2.7.1.

``acknowledge`` never raises: should hl7apy refuse something, a plainer ACK is written by hand.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from hl7apy.base_datatypes import ST, TX
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message, Segment
from hl7apy.exceptions import HL7apyException

from .er7 import SUPPORTED_VERSIONS, Header, library_version
from .problems import CODES, Problem

_ERR_LOCATION_VERSIONS = ("2.3", "2.3.1", "2.4")
_MSA_3_WITHDRAWN = ("2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")
_ERR_1_WITHDRAWN = ("2.8", "2.8.1", "2.8.2")
_TRUNCATION_VERSIONS = _MSA_3_WITHDRAWN  # MSH-2 carries the truncation character '#' from v2.7
_DEFAULT_VERSION = "2.5"
# C0 controls break segments (CR, LF) or are not text: never copied into an ACK
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NULL = '""'
_ESCAPED = re.compile(r"\\[^\\]*\\")
_PLAIN = re.compile(r"[A-Za-z0-9._:/+-]*")
_PLAIN_HD = re.compile(r"[A-Za-z0-9._:/+-]*(\^[A-Za-z0-9._:/+-]*){0,2}")  # an HD: namespace^universal id^type
_TRIGGER_OPTIONAL = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
_TRUNCATED = "\x1a"  # stands for '#' while hl7apy escapes a value; written \P\ after it (v2.7 2.7.4)

log = logging.getLogger(__name__)


def ack_version(header: Header | None) -> str:
    """The version the ACK of ``header``'s message is written in: the message's own, else 2.5."""
    version = header.version if header else ""
    return version if version in SUPPORTED_VERSIONS else _DEFAULT_VERSION


def acknowledge(header: Header | None, code: str, problem: Problem | None = None, *,
                ack_id: str, now: datetime | None = None) -> str:
    """The ACK (ER7, segments separated by CR) answering ``header``'s message with ``code`` (AA, AE, AR)."""
    header = header or Header()
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    try:
        if problem is None:
            fast = _accepted(header, code, ack_id, moment)
            if fast is not None:
                return fast
        return _build(header, code, problem, ack_id, moment)
    except Exception:  # hl7apy refused a value no test foresaw: the sender still gets its answer
        log.exception("HL7 v2 ACK built by hand for message %r", header.control_id)
        return _plain(header, code, problem, ack_id, moment)


def _accepted(header: Header, code: str, ack_id: str, moment: str) -> str | None:
    """The ACK without an error, written directly when every value copied into it is plain text (no
    escaping to do): what hl7apy would write, in microseconds instead of milliseconds. None: ask hl7apy."""
    version = ack_version(header)
    hds = tuple(_hd(raw) for raw in (header.receiving_application, header.receiving_facility,
                                     header.sending_application, header.sending_facility))
    if not all(_PLAIN_HD.fullmatch(raw) for raw in hds) or not all(
            _PLAIN.fullmatch(raw) for raw in (header.control_id, ack_id)):
        return None
    encoding = "^~\\&#" if version in _TRUNCATION_VERSIONS else "^~\\&"
    msh = ["MSH", encoding, *hds, moment, "", _message_type(header, version), ack_id, _processing_id(header),
           version]
    msa = ["MSA", code, header.control_id or _NULL]
    return "|".join(msh) + "\r" + "|".join(msa)


def _build(header: Header, code: str, problem: Problem | None, ack_id: str, moment: str) -> str:
    version = ack_version(header)
    ack = Message("ACK", version=library_version(version), validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = ack.msh
    # the sender's own HD values, as it sent them (already ER7), go back swapped
    for number, raw in ((3, header.receiving_application), (4, header.receiving_facility),
                        (5, header.sending_application), (6, header.sending_facility)):
        if _hd(raw):
            _set(msh, f"msh_{number}", _hd(raw))
    msh.msh_7 = moment
    msh.msh_9 = _message_type(header, version)
    msh.msh_10 = ST(ack_id)
    msh.msh_11 = _processing_id(header)
    msh.msh_12 = version
    ack.msa.msa_1 = code
    # MSA-2 is required: a message whose control id could not be read gets HL7's explicit null
    ack.msa.msa_2 = ST(_clean(header.control_id) or _NULL)
    err = ""
    if problem is not None:
        label = CODES.get(problem.code, CODES[207])
        if version not in _MSA_3_WITHDRAWN:
            ack.msa.msa_3 = ST(_text(problem.text, 80, version))  # read by receivers older than v2.5
        if version in _ERR_LOCATION_VERSIONS:
            ack.msa.msa_6 = f"{problem.code}^{label}^HL70357"
        err = _error(version, problem, label)
    text = ack.to_er7() + ("\r" + err if err else "")
    return text.replace(_TRUNCATED, "\\P\\")


def _message_type(header: Header, version: str) -> str:
    if not header.trigger or not header.trigger.isalnum():
        # MSH-9.2 is required from v2.6: an event that could not be read is HL7's explicit null
        return "ACK" if version in _TRIGGER_OPTIONAL else f"ACK^{_NULL}^ACK"
    # MSH-9.3 (message structure) exists from v2.3.1
    return f"ACK^{header.trigger}" if version == "2.3" else f"ACK^{header.trigger}^ACK"


def _processing_id(header: Header) -> str:
    # PT is a composite: only its processing id (P, D, T) goes back
    return "".join(c for c in header.processing_id if c.isalnum())[:1] or "P"


def _hd(raw: str) -> str:
    """An HD as the sender wrote it, cut to what an HD may hold: three components (namespace id at most
    20 characters, as table 0300's IS), no subcomponents, no escape sequences."""
    plain = _ESCAPED.sub("", _clean(raw)).replace("\\", "")
    components = [part.split("&")[0] for part in plain.split("^")[:3]]
    components[0] = components[0][:20]
    return "^".join(components).rstrip("^")


def _clean(raw: str) -> str:
    return _CONTROL.sub("", raw or "")


def _text(text: str, size: int, version: str) -> str:
    """A message text as one line, at most ``size`` characters; '#' escaped where it truncates (2.7+)."""
    flat = " ".join(_CONTROL.sub(" ", text or "").split())[:size]
    return flat.replace("#", _TRUNCATED) if version in _TRUNCATION_VERSIONS else flat


def _set(segment, name: str, raw: str) -> None:
    try:
        setattr(segment, name, raw)
    except HL7apyException:
        pass  # a value hl7apy will not take back is left out of the ACK rather than failing it


def _location(problem: Problem) -> list[str]:
    """ERL (segment^sequence^field...) of the problem; a bare segment name is its first one."""
    parts = [part for part in _clean(problem.location).split("^")]
    if not parts or not re.fullmatch(r"[A-Z][A-Z0-9]{2}", parts[0]):
        return []
    if len(parts) == 1 or not parts[1].isdigit():
        parts[1:2] = ["1"]
    return parts


def _error(version: str, problem: Problem, label: str) -> str:
    """The ERR segment (ER7) of ``problem`` as ``version`` defines it."""
    # an ERR of v2.8 is one of v2.7 without ERR-1: built at 2.7, ERR-1 stays empty in its place
    err = Segment("ERR", version="2.7" if version in _ERR_1_WITHDRAWN else library_version(version),
                  validation_level=VALIDATION_LEVEL.TOLERANT)
    location = _location(problem)
    if version in _ERR_LOCATION_VERSIONS:
        location = (location or ["MSH", "1"])[:3]
        location += [""] * (3 - len(location))
        _set(err, "err_1", "^".join(location) + f"^{problem.code}&{label}&HL70357")
        return err.to_er7()
    if location:
        _set(err, "err_2", "^".join(location))
    _set(err, "err_3", f"{problem.code}^{label}^HL70357")
    err.err_4 = "E"
    err.err_8 = TX(_text(problem.text, 250, version))
    return err.to_er7()


def _plain(header: Header, code: str, problem: Problem | None, ack_id: str, moment: str) -> str:
    """The ACK without hl7apy: only values that need no escaping (letters, digits, - . _ space)."""
    version = ack_version(header)

    def safe(raw: str) -> str:
        return re.sub(r"[^A-Za-z0-9 ._-]", "", raw or "")[:80]

    encoding = "^~\\&#" if version in _TRUNCATION_VERSIONS else "^~\\&"
    msh = ["MSH", encoding, safe(header.receiving_application), safe(header.receiving_facility),
           safe(header.sending_application), safe(header.sending_facility), moment, "",
           _message_type(header, version), safe(ack_id), _processing_id(header), version]
    msa = ["MSA", code, safe(header.control_id) or _NULL]
    lines = ["|".join(msh)]
    if problem is None:
        return "\r".join(lines + ["|".join(msa)])
    label = CODES.get(problem.code, CODES[207])
    text = safe(problem.text)
    if version in _ERR_LOCATION_VERSIONS:
        msa += [text, "", "", f"{problem.code}^{label}^HL70357"]
        err = f"ERR|MSH^1^^{problem.code}&{label}&HL70357"
    else:
        msa += [text] if version not in _MSA_3_WITHDRAWN else []
        err = f"ERR|||{problem.code}^{label}^HL70357|E||||{text}"
    return "\r".join(lines + ["|".join(msa), err])
