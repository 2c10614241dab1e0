"""Reading ER7 with hl7apy: one message in, its segments and their values out (tolerant, never raises)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import SubComponent
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message

from fhir_server import limits

# Versions whose PID, PV1, OBR and OBX fields sit where the mappers read them.
SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")
BATCH_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")
_SEPARATORS = re.compile(r"\r\n|\n|\r")
# HL7 escape sequences (v2.5 2.7.4); hl7apy escapes on output but hands values back escaped
_ESCAPE = re.compile(r"\\(F|S|T|R|E|\.br|X[0-9A-Fa-f]*|H|N|Z[^\\]*)\\")
# what makes a field of MSH worth hl7apy's reading: escapes, repetitions, subcomponents, quotes, edge spaces
_SPECIAL = re.compile(r'[\\~&"]|^\s|\s$|\^\s|\s\^')
_PLAIN = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\", "P": "#", ".br": "\n", "H": "", "N": ""}
# C0 control characters a field may not hold (CR and LF end segments, a tab is text)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_CODES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D}
# hl7apy has no 2.7.1 library: 2.7.1 only changed tables and texts, so 2.7 reads it
_LIBRARY = {"2.7.1": "2.7"}
_BEFORE_TRUNCATION = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6")


class Unreadable(Exception):
    """The text is not one HL7 v2 message hl7apy can read; ``code`` is the HL7 table 0357 error code."""

    def __init__(self, code: int, text: str, location: str = "", ack: str = "AR"):
        super().__init__(text)
        self.code = code
        self.text = text
        self.location = location
        self.ack = ack  # AR: not processable; AE: read, but holds what cannot be stored


def library_version(version: str) -> str:
    """The hl7apy library that reads and writes ``version``."""
    return _LIBRARY.get(version, version)


def segments_of(text: str) -> list[str]:
    """The segments of ER7 text, whichever of CR, LF or CRLF separates them; blank lines dropped."""
    return [line for line in _SEPARATORS.split(text) if line.strip()]


def read(text: str):
    """The hl7apy Message of ER7 ``text`` (one message, segments as children); raise Unreadable."""
    lines = segments_of(text.lstrip("\ufeff"))
    if not lines:
        raise Unreadable(100, "the message is empty")
    kinds = [line[:3] for line in lines]
    batch = [kind for kind in kinds if kind in BATCH_SEGMENTS]
    if batch or kinds.count("MSH") > 1:
        raise Unreadable(100, "batches and files (FHS/BHS, or several MSH) are not accepted: send one message"
                              " per MLLP frame or HTTP request", f"{batch[0] if batch else 'MSH'}^1")
    if kinds[0] != "MSH":
        raise Unreadable(100, f"the message starts with {kinds[0]!r}, not MSH", f"{kinds[0]}^1")
    check_encoding(lines[0])
    check_controls(lines)
    check_repetitions(lines, limits.configured().max_repetitions)
    try:
        return _parse(lines)
    except HL7apyException as exc:
        # unknown versions, bad encoding characters, malformed MSH: hl7apy says which
        name = type(exc).__name__
        code = 203 if "Version" in name else 102 if "Encoding" in name else 100
        raise Unreadable(code, f"{name}: {exc}"[:200], "MSH^1") from None
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        raise Unreadable(100, f"unreadable message: {exc}"[:200], "MSH^1") from None


# Table 0357 gained 104 "Value too long" ("or the length that the application is able to safely handle")
# in v2.7; before it, 207 "Application internal error" is the catch-all rejection.
_VALUE_TOO_LONG_VERSIONS = ("2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")


def _parse(lines: list[str]):
    """hl7apy's tolerant reading of the segments ``lines``; a 2.7.1 message is read by the 2.7 library."""
    msh = lines[0]
    version = _version(msh, msh[3]) if len(msh) > 4 else ""
    library = library_version(version)
    parts = msh.split(msh[3]) if len(msh) > 4 else []
    if library != version:
        components = parts[11].split(msh[4])
        components[0] = components[0].replace(version, library)
        parts[11] = msh[4].join(components)
    if len(parts) > 1 and len(parts[1]) == 5 and parts[1][4] == "#" and version in _BEFORE_TRUNCATION:
        # the v2.7 truncation character sent by a 2.3-2.6 sender: it has no meaning there, and hl7apy
        # would refuse five encoding characters before v2.7
        parts[1] = parts[1][:4]
    if parts:
        lines = [msh[3].join(parts), *lines[1:]]
    message = parse_message("\r".join(lines), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    if library != version:
        message.msh.msh_12.vid_1 = version
    return message


def check_encoding(msh: str) -> None:
    """Raise Unreadable when MSH-2's component separator is '#' or is not the one MSH-9 is written with.

    '#' is HL7's truncation character from v2.7; a message declaring it the component separator most
    often still writes its components with '^', and would otherwise be refused for a message type it
    does not have.
    """
    if len(msh) < 8:
        return  # no encoding characters: hl7apy says so
    separator = msh[3]
    parts = msh.split(separator)
    encoding = parts[1] if len(parts) > 1 else ""
    component = encoding[:1]
    message_type = parts[8] if len(parts) > 8 else ""
    mismatch = component != "^" and "^" in message_type and component not in message_type
    written = f"MSH-9 {message_type!r} is written with '^', not {component!r}; " if mismatch else ""
    if component == "#":
        raise Unreadable(102, f"{written}MSH-2 {encoding!r} makes '#' the component separator: '#' is HL7's"
                              " truncation character (v2.7 and later) and is not accepted as a separator; send"
                              " the standard encoding characters ^~\\&", "MSH^1^2")
    if mismatch:
        raise Unreadable(102, f"{written}MSH-2 {encoding!r} does not declare the separators the message uses",
                         "MSH^1^2")


def check_controls(lines: list[str]) -> None:
    """Raise Unreadable (AE 102, naming the field) when a field holds a C0 control character other than a
    tab, as it is or as an escape (\\X00\\): such a value must never be stored."""
    msh = lines[0]
    separator = msh[3] if len(msh) > 3 else "|"
    escape = msh[6] if len(msh) > 6 else "\\"
    hex_escape = re.compile(re.escape(escape) + r"X((?:[0-9A-Fa-f]{2})+)" + re.escape(escape))
    seen: dict[str, int] = {}
    for line in lines:
        name = line[:3]
        seen[name] = seen.get(name, 0) + 1
        found = _CONTROL.search(line)
        where = found.start() if found else -1
        char = ord(found.group()) if found else -1
        for match in hex_escape.finditer(line) if escape in line else ():
            codes = set(bytes.fromhex(match.group(1))) & _CONTROL_CODES
            if codes:
                if where < 0 or match.start() < where:
                    where, char = match.start(), min(codes)
                break
        if where < 0:
            continue
        number = line[:where].count(separator) + (1 if name == "MSH" else 0)
        label = f"{name}-{number}" if number else f"the segment name {name!r}"
        raise Unreadable(102, f"{label} holds the control character U+{char:04X}: control characters are not"
                              " accepted in a field", f"{name}^{seen[name]}^{number}" if number else f"{name}^1",
                         ack="AE")


def check_repetitions(lines: list[str], most: int) -> None:
    """Raise Unreadable (104, or 207 before v2.7) when a field repeats more than ``most`` times.

    Read on the ER7 text, before hl7apy: hl7apy took 30 s on a PID-3 of 20,000 repetitions.
    """
    msh = lines[0]
    if len(msh) < 8:
        return  # no encoding characters: hl7apy refuses it
    separator, repetition = msh[3], msh[5]
    seen: dict[str, int] = {}
    for line in lines:
        name = line[:3]
        seen[name] = seen.get(name, 0) + 1
        if line.count(repetition) <= most:
            continue  # the whole segment has fewer: no field can have more (the usual case, one count)
        for number, value in enumerate(line.split(separator)[1:], 1):
            if name == "MSH":
                number += 1  # MSH-1 is the separator itself; MSH-2, the encoding characters, holds ~
                if number == 2:
                    continue
            count = value.count(repetition) + 1
            if count > most:
                # An MSH too long to read gives no header: the ACK falls back to v2.5, where 104 is unknown.
                version = _version(msh, separator) if name != "MSH" else ""
                code = 104 if version in _VALUE_TOO_LONG_VERSIONS else 207
                raise Unreadable(code, f"{name}-{number} has {count} repetitions: at most {most} are accepted",
                                 f"{name}^{seen[name]}^{number}")


def _version(msh: str, separator: str) -> str:
    """MSH-12.1 read from the MSH line (MSH-n is the n-1th part of the split)."""
    parts = msh.split(separator)
    return parts[11].split(msh[4])[0].strip() if len(parts) > 11 and len(msh) > 4 else ""


def first_header(text: str) -> Header | None:
    """The MSH of text that ``read`` refused (a batch, a bad segment order), for its ACK; None if none reads."""
    for line in segments_of(text.lstrip("\ufeff")):
        if line.startswith("MSH"):
            try:
                check_repetitions([line], limits.configured().max_repetitions)
                return header(_parse([line]))
            except (Unreadable, HL7apyException, ValueError, IndexError, KeyError, AttributeError, TypeError):
                return None
    return None


def msh_header(text: str) -> Header | None:
    """What ``first_header`` reads, in microseconds instead of hl7apy's milliseconds: the MSH line split
    on its separators. A field this split might read otherwise than hl7apy (escapes, repetitions, a
    version hl7apy does not know, other encoding characters) is left to ``first_header``."""
    line = next((item for item in segments_of(text.lstrip("\ufeff")) if item.startswith("MSH")), None)
    if line is None:
        return None
    fields = line.split("|")
    if len(fields) < 12 or fields[1] != "^~\\&":
        return first_header(text)
    wanted = [fields[n - 1] for n in (3, 4, 5, 6, 9, 10, 11, 12)]
    if any(_SPECIAL.search(value) for value in wanted) or "^" in fields[9]:
        return first_header(text)

    def part(number: int, component: int) -> str:
        parts = fields[number - 1].split("^")
        return parts[component - 1].strip() if component <= len(parts) else ""

    version = part(12, 1)
    if version not in SUPPORTED_VERSIONS:
        return first_header(text)
    return Header(
        sending_application=fields[2].rstrip("^"),
        sending_facility=fields[3].rstrip("^"),
        receiving_application=fields[4].rstrip("^"),
        receiving_facility=fields[5].rstrip("^"),
        control_id=fields[9].strip(),
        message_code=part(9, 1),
        trigger=part(9, 2),
        processing_id=part(11, 1),
        version=version,
    )


def unescape(value: str) -> str:
    """An ER7 value as plain text (\\F\\ -> |, \\.br\\ -> newline, \\Xhh\\ -> bytes as Latin-1)."""
    if "\\" not in value:
        return value

    def plain(match: re.Match) -> str:
        code = match.group(1)
        if code in _PLAIN:
            return _PLAIN[code]
        if code.startswith("X"):
            try:
                return bytes.fromhex(code[1:]).decode("latin-1")
            except ValueError:
                return match.group(0)
        return match.group(0)

    return _ESCAPE.sub(plain, value)


def _position(name: str | None) -> int:
    # hl7apy names parts PID_3, CX_4, HD_2; a part of a single-type field is named by its type (ST, IS)
    suffix = (name or "").rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else 1


def repetitions(segment, number: int) -> list:
    """Every repetition of field ``number`` of ``segment`` (hl7apy Fields, in order)."""
    wanted = f"{segment.name}_{number}"
    return [child for child in segment.children if child.name == wanted]


def value(element, *path: int) -> str:
    """The plain text at ``path`` (component, subcomponent positions) inside ``element``; '' when absent."""
    if element is None:
        return ""
    for number in path:
        children = list(getattr(element, "children", None) or [])
        if not children:
            if number != 1:
                return ""  # a leaf: its first part is itself, it has no others
            continue
        element = next((child for child in children if _position(child.name) == number), None)
        if element is None:
            return ""
    text = _leaf_text(element)
    if text is None:
        try:
            text = element.to_er7()
        except HL7apyException:
            return ""
    # "" is HL7's explicit null (delete the value): for a mapper, nothing
    return "" if text == '""' else unescape(text).strip()


def _leaf_text(element) -> str | None:
    """The ER7 text of an element that is one leaf at its first position, read without ``to_er7``.

    ``to_er7`` walks up to the message for its encoding characters at every call: a third of the mapping
    time. A parsed leaf keeps the text it was read from, the same text ``to_er7`` would write back.
    None: not such an element, ask ``to_er7``.
    """
    while not isinstance(element, SubComponent):
        children = element.children
        if len(children) != 1 or _position(children[0].name) != 1:
            return None
        element = children[0]
    raw = element._value  # hl7apy keeps the parsed value there (its public ``value`` is the same object)
    raw = getattr(raw, "value", raw)
    return raw if isinstance(raw, str) else None


def field(segment, number: int, *path: int) -> str:
    """The plain text of the first repetition of field ``number`` (at ``path`` inside it)."""
    reps = repetitions(segment, number)
    return value(reps[0], *path) if reps else ""


@dataclass(frozen=True)
class Header:
    """What the ACK and the message store need from MSH."""

    sending_application: str = ""  # MSH-3 as ER7 (the ACK copies it back as is)
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""  # MSH-10
    message_code: str = ""  # MSH-9.1: ADT, ORU
    trigger: str = ""  # MSH-9.2: A01, R01
    processing_id: str = ""  # MSH-11
    version: str = ""  # MSH-12.1

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code

    @property
    def sender(self) -> str:
        """Who sent it (MSH-3 and MSH-4): a control id is unique per sender."""
        return f"{self.sending_application}|{self.sending_facility}"


def header(message) -> Header:
    """The MSH fields of a parsed message."""
    msh = message.msh

    def raw(number: int) -> str:
        reps = repetitions(msh, number)
        try:
            return reps[0].to_er7() if reps else ""
        except HL7apyException:
            return ""

    return Header(
        sending_application=raw(3),
        sending_facility=raw(4),
        receiving_application=raw(5),
        receiving_facility=raw(6),
        control_id=field(msh, 10),
        message_code=field(msh, 9, 1),
        trigger=field(msh, 9, 2),
        processing_id=field(msh, 11, 1),
        version=field(msh, 12, 1),
    )


def segments(message, name: str) -> list:
    """The segments named ``name``, in message order."""
    return [child for child in message.children if child.name == name]


def set_id(segment, default: int) -> int:
    """Field 1 (Set ID) of a repeating segment, or its position when it carries none."""
    text = field(segment, 1)
    return int(text) if text.isdigit() else default
