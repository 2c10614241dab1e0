"""PAM France's ZBE (movement) -> an entry of the visit Encounter's ``location``. Pure.

ZBE-1 movement id, ZBE-2 its start, ZBE-4 action (INSERT, UPDATE, CANCEL), ZBE-7 unit of medical
responsibility, ZBE-8 unit of care (XON: name, type UF, code in XON-10), ZBE-9 nature of the movement.
A location entry carries its movement id (extension), so a later UPDATE or CANCEL finds it; an INSERT
ends the movement before it (status completed, period end = the new start); a CANCEL removes the entry
and reopens the one it had ended. Senders without ZBE (IHE PAM outside France) give PV1-3 instead
(pv1.point_of_care): the same entries, found again by the location itself.
"""

from __future__ import annotations

from .datatypes import date_time
from .problems import Problem
from .zsegment import part

MOVEMENT = "https://relais.example/fhir/StructureDefinition/hl7v2-movement"
ACTIONS = ("INSERT", "UPDATE", "CANCEL")


def _shift(zbe) -> int:
    """1 when ZBE-4 to ZBE-9 sit one field later (the ANS sortie sample has an extra field before the
    action), else 0."""
    return 1 if part(zbe, 4).upper() not in ACTIONS and part(zbe, 5).upper() in ACTIONS else 0


def action(zbe) -> str:
    """ZBE-4 (INSERT when absent or unknown: a movement is new unless it says otherwise)."""
    found = part(zbe, 4 + _shift(zbe)).upper()
    return found if found in ACTIONS else "INSERT"


def movement(zbe) -> tuple[dict, str] | None:
    """(the location entry of ``zbe``, its action), None without a movement id."""
    ident = part(zbe, 1)
    if not ident:
        return None
    shift = _shift(zbe)
    start_text = part(zbe, 2)
    start = date_time(start_text) if start_text else None
    if start_text and start is None:
        raise Problem(102, f"ZBE-2 (movement start) {start_text!r} is not an HL7 timestamp", "ZBE^1^2")
    identifier: dict = {"value": ident}
    if part(zbe, 1, 2):
        identifier["assigner"] = {"display": part(zbe, 1, 2)}
    extension = [{"url": "identifier", "valueIdentifier": identifier}]
    nature = part(zbe, 9 + shift)
    if nature:
        extension.append({"url": "nature", "valueCode": nature})
    unit = _unit(zbe, 8 + shift) or _unit(zbe, 7 + shift)
    entry: dict = {"extension": [{"url": MOVEMENT, "extension": extension}],
                   "location": unit or {"display": "unité non précisée"},
                   "status": "active"}
    if start:
        entry["period"] = {"start": start}
    return entry, action(zbe)


def _unit(zbe, number: int) -> dict | None:
    """An XON (a unit: name, UF code in XON-10) as a logical reference to its Location."""
    name, code = part(zbe, number, 1), part(zbe, number, 10)
    if not name and not code:
        return None
    found: dict = {}
    if code:
        found["identifier"] = {"value": code}
        authority = part(zbe, number, 6, 1)
        if authority:
            found["identifier"]["assigner"] = {"display": authority}
    if name:
        found["display"] = name
    return found


def movement_id(entry: dict) -> str | None:
    for ext in entry.get("extension") or []:
        if ext.get("url") == MOVEMENT:
            for sub in ext.get("extension") or []:
                if sub.get("url") == "identifier":
                    return sub["valueIdentifier"].get("value")
    return None


def merged(stored: list[dict], new: list[dict], kind: str) -> list[dict]:
    """The stored locations with the message's movement applied (``kind``: its action)."""
    result = [dict(entry) for entry in stored]
    for entry in new:
        ident = movement_id(entry)
        same = [i for i, item in enumerate(result) if ident and movement_id(item) == ident]
        if kind == "UNDO":  # a transfer cancelled without its movement id: the current location goes
            same = [i for i, item in enumerate(result) if item.get("status") == "active"]
        if kind in ("CANCEL", "UNDO"):
            for i in same:
                _reopen(result, (result[i].get("period") or {}).get("start"))
            result = [item for i, item in enumerate(result) if i not in same]
            continue
        if same:  # corrected in place: a resend of an old movement does not make it current again
            earlier = result[same[0]]
            period = {**(earlier.get("period") or {}), **(entry.get("period") or {})}
            result[same[0]] = {**entry, "status": earlier.get("status", entry["status"]),
                               **({"period": period} if period else {})}
            continue
        start = (entry.get("period") or {}).get("start")
        for item in result:
            if item.get("status") == "active":
                item["status"] = "completed"
                if start:
                    item["period"] = {**(item.get("period") or {}), "end": start}
        result.append(entry)
    return result


def _reopen(entries: list[dict], start: str | None) -> None:
    """The movement a cancelled one had ended becomes current again."""
    for item in entries:
        period = item.get("period") or {}
        if start and period.get("end") == start:
            item["status"] = "active"
            item["period"] = {k: v for k, v in period.items() if k != "end"}
