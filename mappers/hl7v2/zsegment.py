"""Reading fields of the segments hl7apy does not know (PAM France's ZBE, ZFA, ZFD): it keeps their
components unnamed, so a component is found by splitting the field's ER7. Pure."""

from __future__ import annotations

from hl7apy.exceptions import HL7apyException

from .er7 import repetitions, unescape


def part(segment, number: int, component: int = 1, subcomponent: int = 0) -> str:
    """The plain text of component ``component`` (and ``subcomponent``, 0: all of it) of the first
    repetition of field ``number``; '' when absent or HL7's explicit null."""
    reps = repetitions(segment, number)
    if not reps:
        return ""
    try:
        text = reps[0].to_er7()
    except HL7apyException:
        return ""
    components = text.split("^")
    if component > len(components):
        return ""
    found = components[component - 1]
    if subcomponent:
        subs = found.split("&")
        found = subs[subcomponent - 1] if subcomponent <= len(subs) else ""
    return "" if found == '""' else unescape(found).strip()
