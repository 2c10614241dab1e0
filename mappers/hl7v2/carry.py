"""How a message's resource takes over the stored version it updates (HL7 v2: an empty field, a
segment not sent, change nothing). Pure functions of (stored, new) -> the resource to store."""

from __future__ import annotations

from collections.abc import Callable

from fhir_server.codes import IDENTITY_RELIABILITY

_NOT_CARRIED = ("meta", "text", "id")
# choice elements ([x]) of the resources carried over: a new deceasedBoolean replaces a stored deceasedDateTime
# complex extensions whose parts a message may send apart: PID-32 in every PAM France message, ZFD
# (how the identity was collected, when the INSi was queried) in some only
_BY_PART = (IDENTITY_RELIABILITY,)
_CHOICES = ("deceased", "multipleBirth", "value", "effective", "onset", "abatement", "performed", "occurrence")


def kept(stored: dict, new: dict) -> dict:
    """``new`` with every element it lacks taken from ``stored``; extensions merged by url (a message
    with identity reliability alone keeps the DMP status), identifiers by system (a PID-3 without the
    INS keeps it; a corrected INS replaces it)."""
    chosen = {prefix for prefix in _CHOICES for key in new if _is_choice(key, prefix)}
    result = {key: value for key, value in stored.items()
              if key not in _NOT_CARRIED and not any(_is_choice(key, prefix) for prefix in chosen)}
    result.update(new)
    if "extension" in stored and "extension" in new:
        earlier = {e.get("url"): e for e in stored["extension"]}
        merged = [{**e, "extension": _by(earlier[e["url"]].get("extension") or [], e.get("extension") or [],
                                         lambda part: part.get("url"))}
                  if e.get("url") in _BY_PART and e.get("url") in earlier else e for e in new["extension"]]
        result["extension"] = _by(stored["extension"], merged, lambda e: e.get("url"))
    if "identifier" in stored and "identifier" in new:
        result["identifier"] = _by(stored["identifier"], new["identifier"], lambda i: i.get("system"))
    return result


def _is_choice(key: str, prefix: str) -> bool:
    return key.startswith(prefix) and key[len(prefix):len(prefix) + 1].isupper()


def _by(stored: list, new: list, key: Callable[[dict], object]) -> list:
    """``new``, then the ``stored`` items whose key no new item has."""
    taken = {key(item) for item in new}
    return [*new, *(item for item in stored if key(item) not in taken)]


def links(stored: list, new: list, *, dropping: str | None = None) -> list:
    """Patient.link: the stored links (but those of type ``dropping``) and the new ones, each once."""
    result = [link for link in stored if link.get("type") != dropping]
    seen = {(_other(link), link.get("type")) for link in result}
    for link in new:
        if (_other(link), link.get("type")) not in seen:
            result.append(link)
            seen.add((_other(link), link.get("type")))
    return result


def _other(link: dict) -> str | None:
    return (link.get("other") or {}).get("reference")


def patient(stored: dict, new: dict) -> dict:
    """A Patient from a message: what it lacks kept, its links added to the stored ones."""
    result = kept(stored, new)
    if "link" in new:
        result["link"] = links(stored.get("link") or [], new["link"])
    return result
