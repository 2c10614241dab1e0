"""French text for the pre-DMP's narrative: pure functions from FHIR data to what a doctor reads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from html import escape
from zoneinfo import ZoneInfo

from fhir_server.codes import IDENTITY_RELIABILITY, IDENTITY_STATUS_SYSTEM, INS_SYSTEMS

XHTML = "http://www.w3.org/1999/xhtml"
PARIS = ZoneInfo("Europe/Paris")
NOTHING_KNOWN = "Aucune information connue de la plateforme."

IDENTITY_STATUS_LABELS = {
    "PROV": "identité provisoire",
    "RECUP": "identité récupérée",
    "VALI": "identité validée",
    "QUAL": "identité qualifiée",
}
_GENDERS = {"male": "homme", "female": "femme", "other": "autre", "unknown": "inconnu"}
_UNITS = {"s": "seconde", "min": "minute", "h": "heure", "d": "jour", "wk": "semaine", "mo": "mois", "a": "an"}
_TASK_STATUS = {"requested": "ouverte", "in-progress": "en cours", "completed": "traitée", "cancelled": "annulée",
                "accepted": "acceptée", "on-hold": "en attente", "failed": "échouée", "rejected": "rejetée"}
_CRITICALITY = {"high": "criticité élevée", "low": "criticité faible", "unable-to-assess": "criticité non évaluable"}
_TELECOM = {"phone": "tél.", "email": "courriel", "fax": "fax", "sms": "SMS", "url": "site", "pager": "bip"}


def div(paragraphs: list[str] = (), items: list[str] = ()) -> str:
    """An XHTML narrative div of already-escaped paragraphs and list items."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if items:
        body += "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    return f'<div xmlns="{XHTML}">{body or "<p>" + NOTHING_KNOWN + "</p>"}</div>'


def concept(cc: object) -> str:
    """A CodeableConcept as a person reads it: its text, else a coding's display, else its code."""
    if not isinstance(cc, dict):
        return "non précisé"
    if cc.get("text"):
        return str(cc["text"])
    for coding in cc.get("coding") or []:
        if coding.get("display"):
            return str(coding["display"])
    for coding in cc.get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return "non précisé"


def number(value: object) -> str:
    """A decimal in French (comma), without trailing zeros."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = format(d.normalize(), "f") if d == d.to_integral() or abs(d.as_tuple().exponent) < 10 else str(d)
    return text.replace(".", ",")


def quantity(q: object) -> str:
    if not isinstance(q, dict) or q.get("value") is None:
        return "valeur non précisée"
    unit = q.get("unit") or q.get("code") or ""
    return f"{number(q['value'])} {unit}".strip()


def date(text: object) -> str:
    """An ISO date, or a dateTime in French time (Europe/Paris), as dd/mm/yyyy (à hh:mm)."""
    if not isinstance(text, str) or len(text) < 4:
        return "date inconnue"
    if len(text) >= 16 and "T" in text:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        if moment.tzinfo is not None:
            moment = moment.astimezone(PARIS)
        return moment.strftime("%d/%m/%Y à %H:%M")
    day = text[:10].split("-")
    return "/".join(reversed(day)) if len(day) == 3 else text[:10]


_PRIORITIES = {"routine": "normale", "urgent": "urgente", "asap": "dès que possible", "stat": "immédiate"}


def priority(value: object) -> str:
    return _PRIORITIES.get(str(value), "non précisée")


def patient_name(patient: dict) -> str:
    for name in patient.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        given = " ".join(name.get("given") or [])
        family = name.get("family") or ""
        if given or family:
            return f"{given} {str(family).upper()}".strip()
    return "patient sans nom connu"


def identity_status(patient: dict) -> str | None:
    """The FR Core identity status code (PROV, RECUP, VALI, QUAL) of ``patient``, None when absent."""
    for extension in patient.get("extension") or []:
        if extension.get("url") != IDENTITY_RELIABILITY:
            continue
        for sub in extension.get("extension") or []:
            coding = sub.get("valueCoding") or {}
            if sub.get("url") == "identityStatus" and coding.get("system") in (IDENTITY_STATUS_SYSTEM, None):
                return coding.get("code")
    return None


def ins(patient: dict) -> dict | None:
    """The patient's INS identifier (INS-NIR or its test and demo forms, else INS-NIA), if any."""
    found = [i for i in patient.get("identifier") or [] if i.get("system") in INS_SYSTEMS and i.get("value")]
    found.sort(key=lambda i: INS_SYSTEMS.index(i["system"]))
    return found[0] if found else None


def dosage(request: dict) -> str:
    """A MedicationRequest's dosage: its text, else dose, frequency and route spelled out."""
    parts = []
    for instruction in request.get("dosageInstruction") or []:
        if instruction.get("text"):
            parts.append(str(instruction["text"]))
            continue
        words = []
        for rate in instruction.get("doseAndRate") or []:
            if rate.get("doseQuantity"):
                words.append(quantity(rate["doseQuantity"]))
        repeat = (instruction.get("timing") or {}).get("repeat") or {}
        if repeat.get("frequency") and repeat.get("periodUnit"):
            period = repeat.get("period") or 1
            unit = _UNITS.get(repeat["periodUnit"], repeat["periodUnit"])
            per = f"par {unit}" if period == 1 else f"toutes les {number(period)} {unit}s"
            words.append(f"{number(repeat['frequency'])} fois {per}")
        if instruction.get("route"):
            words.append(f"voie {concept(instruction['route']).lower()}")
        if words:
            parts.append(", ".join(words))
    return "; ".join(parts) if parts else "posologie non précisée"


def observation_value(observation: dict) -> str:
    if "valueQuantity" in observation:
        return quantity(observation["valueQuantity"])
    components = [f"{concept(c.get('code'))} {quantity(c.get('valueQuantity'))}"
                  for c in observation.get("component") or [] if "valueQuantity" in c]
    if components:
        return ", ".join(components)
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in observation:
            return str(observation[key])
    if "valueCodeableConcept" in observation:
        return concept(observation["valueCodeableConcept"])
    return "valeur non précisée"


def _values(observation: dict) -> dict[str, tuple[Decimal, str]]:
    """Numeric values by component (``""`` for the main value), with their unit."""
    values = {}
    pieces = [("", observation.get("valueQuantity"))]
    pieces += [(concept(c.get("code")), c.get("valueQuantity")) for c in observation.get("component") or []]
    for name, q in pieces:
        if isinstance(q, dict) and q.get("value") is not None:
            try:
                values[name] = (Decimal(str(q["value"])), str(q.get("unit") or q.get("code") or ""))
            except InvalidOperation:
                continue
    return values


def trend(latest: dict, previous: dict | None) -> str:
    """How the measure moved since the previous one, in French."""
    if previous is None:
        return "première mesure connue"
    now, before = _values(latest), _values(previous)
    moves = []
    for name, (value, unit) in now.items():
        if name not in before or before[name][1] != unit:
            continue
        delta = value - before[name][0]
        label = f"{name} " if name else ""
        if delta > 0:
            moves.append(f"{label}en hausse de {number(delta)} {unit}".strip())
        elif delta < 0:
            moves.append(f"{label}en baisse de {number(-delta)} {unit}".strip())
        else:
            moves.append(f"{label}stable")
    since = date(previous.get("effectiveDateTime") or previous.get("issued"))
    if not moves:
        return f"mesure précédente le {since} (non comparable)"
    return f"{', '.join(moves)} depuis le {since}"


def task_status(task: dict) -> str:
    return _TASK_STATUS.get(str(task.get("status")), str(task.get("status") or "statut inconnu"))


def criticality(allergy: dict) -> str | None:
    return _CRITICALITY.get(str(allergy.get("criticality")))


def telecom(practitioner: dict) -> str:
    contacts = [f"{_TELECOM.get(t.get('system'), t.get('system') or 'contact')} {t['value']}"
                for t in practitioner.get("telecom") or [] if t.get("value")]
    return ", ".join(contacts) if contacts else "aucun contact connu"


def practitioner_name(practitioner: dict) -> str:
    for name in practitioner.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        prefix = " ".join(name.get("prefix") or [])
        given = " ".join(name.get("given") or [])
        text = " ".join(p for p in (prefix, given, str(name.get("family") or "")) if p)
        if text:
            return text
    return "professionnel sans nom connu"


def gender(patient: dict) -> str:
    return _GENDERS.get(str(patient.get("gender")), "non précisé")


def e(text: object) -> str:
    """Escaped for the narrative."""
    return escape(str(text), quote=False)
