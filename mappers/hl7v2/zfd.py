"""PID-32 and PAM France's ZFD -> FR Core identity reliability on the Patient. Pure.

PID-32 is the identity status (PAM France 2.11: VIDE, PROV, VALI, QUAL, RECUP, DOUTE, FICTI...);
FR Core's ``identityStatus`` takes PROV, RECUP, VALI or QUAL, so a doubtful, fictitious or
not yet checked identity is PROV. ZFD-5 is how the identity was collected (``INSI``: the INSi
teleservice), ZFD-6 the date the INSi was queried.
"""

from __future__ import annotations

from fhir_server.codes import IDENTITY_RELIABILITY, IDENTITY_STATUS_SYSTEM, IDENTITY_STATUSES

from .datatypes import date_only
from .er7 import field
from .problems import Problem
from .zsegment import part

METHOD_COLLECTION_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-method-collection"
_METHODS = {"SM": "Saisie manuelle", "CV": "Carte vitale", "INSI": "Téléservice INSI", "CB": "Code à barre",
            "RFID": "Puce RFID"}
_STATUS_DISPLAY = {"PROV": "Identité provisoire", "RECUP": "Identité récupérée", "VALI": "Identité validée",
                   "QUAL": "Identité qualifiée"}


def identity_status(code: str) -> str | None:
    """The FR Core identity status of a PID-32 code (None for none)."""
    code = code.strip().upper()
    if not code:
        return None
    return code if code in IDENTITY_STATUSES else "PROV"


def reliability(pid, zfd) -> dict | None:
    """The identity-reliability extension from PID-32 and ZFD (``zfd`` may be None); None without either."""
    parts = []
    method = part(zfd, 5).upper() if zfd is not None else ""
    if method:
        coding = {"system": METHOD_COLLECTION_SYSTEM, "code": "INSI" if method == "INSI" else method}
        if coding["code"] in _METHODS:
            coding["display"] = _METHODS[coding["code"]]
        parts.append({"url": "methodCollection", "valueCoding": coding})
    queried = part(zfd, 6) if zfd is not None else ""
    if queried:
        day = date_only(queried)
        if day is None:
            raise Problem(102, f"ZFD-6 (INSi query date) {queried!r} is not an HL7 date", "ZFD^1^6")
        parts.append({"url": "dateInterrogationINSi", "valueDate": day})
    status = identity_status(field(pid, 32))
    if status:
        parts.append({"url": "identityStatus", "valueCoding": {
            "system": IDENTITY_STATUS_SYSTEM, "code": status, "display": _STATUS_DISPLAY[status]}})
    return {"url": IDENTITY_RELIABILITY, "extension": parts} if parts else None
