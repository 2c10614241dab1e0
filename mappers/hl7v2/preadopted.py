"""Segments a sender pre-adopts from a later HL7 version than its message's: the CI-SIS profiles (ORU^R01
in v2.5, MDM in v2.6) carry PRT, which v2.7 defined. hl7apy refuses a segment its version does not know,
so the message is read without them and each is read with the first version that defines it. Pure."""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_segment

from fhir_server import limits

from . import er7

# segment -> the first version hl7apy reads it in
PRE_ADOPTED = {"PRT": "2.7"}
_KNOWN_FROM = ("2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")


def read(text: str) -> tuple[object, list]:
    """(the hl7apy Message of ``text``, all its segments in message order, pre-adopted ones included).

    Raise er7.Unreadable as ``er7.read`` does; a pre-adopted segment hl7apy cannot read is an AR 100.
    """
    lines = er7.segments_of(text.lstrip("\ufeff"))
    adopted = [(n, line) for n, line in enumerate(lines) if n and line[:3] in PRE_ADOPTED]
    if not adopted:
        message = er7.read(text)
        return message, list(message.children)
    kept = [line for n, line in enumerate(lines) if not (n and line[:3] in PRE_ADOPTED)]
    message = er7.read("\r".join(kept))
    er7.check_repetitions([lines[0]] + [line for _, line in adopted], limits.configured().max_repetitions)
    ordered = list(message.children)
    seen: dict[str, int] = {}
    for position, line in adopted:
        name = line[:3]
        seen[name] = seen.get(name, 0) + 1
        version = message.version if message.version in _KNOWN_FROM else PRE_ADOPTED[name]
        try:
            segment = parse_segment(line, version=version, encoding_chars=message.encoding_chars,
                                    validation_level=VALIDATION_LEVEL.TOLERANT)
        except (HL7apyException, ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
            raise er7.Unreadable(100, f"unreadable {name} segment: {exc}"[:200], f"{name}^{seen[name]}") from None
        ordered.insert(position, segment)  # in ascending order: every line before it is in place
    return message, ordered
