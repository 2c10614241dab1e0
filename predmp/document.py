"""The pre-DMP as a FHIR document: a Bundle of type ``document`` whose first entry is a Composition in French.

Pure: facts in (``gather.Facts``), Bundle out. ``validated`` turns a draft into the final document
(Composition final, with the validating doctor as legal attester).
"""

from __future__ import annotations

import copy
import uuid

from fhir_server.codes import RPPS

from . import codes
from . import narrative as n
from .gather import Facts, effective

LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
PLATFORM_DEVICE = {
    "resourceType": "Device",
    "deviceName": [{"name": "Relais, plateforme de coordination des soins à distance", "type": "user-friendly-name"}],
}


def _section(key: str, title: str, coding: dict, paragraphs: list[str], items: list[str], refs: list[str]) -> dict:
    section = {
        "id": key,  # a stable handle on the section (the console, a reader)
        "title": title,
        "code": {"coding": [coding], "text": title},
        "text": {"status": "generated", "div": n.div(paragraphs, items)},
    }
    if refs:
        section["entry"] = [{"reference": r} for r in refs]
    else:
        section["emptyReason"] = {"coding": [{"system": LIST_EMPTY_REASON, "code": "unavailable",
                                              "display": "Unavailable"}], "text": "Aucune donnée disponible"}
    return section


def _loinc(code: str, display: str) -> dict:
    return {"system": codes.LOINC, "code": code, "display": display}


def _local(code: str, display: str) -> dict:
    return {"system": codes.SECTION_SYSTEM, "code": code, "display": display}


class _Entries:
    """The document's entries, each once, with the fullUrl references to it use."""

    def __init__(self, base: str):
        self.base = base
        self.entries: list[dict] = []
        self.seen: dict[tuple[str, str], str] = {}

    def add(self, resource: dict) -> str:
        key = (resource["resourceType"], resource["id"])
        if key not in self.seen:
            url = f"{self.base}/{key[0]}/{key[1]}"
            self.seen[key] = url
            self.entries.append({"fullUrl": url, "resource": resource})
        return self.seen[key]


def build(facts: Facts, base: str, document_id: str | None = None) -> dict:
    """The draft document (Composition ``preliminary``) of ``facts``; ``base`` is the server's FHIR base."""
    entries = _Entries(base)
    patient = facts.patient
    patient_url = entries.add(patient)
    device_url = f"urn:uuid:{uuid.uuid4()}"
    sections = [
        _problems(facts, entries),
        _treatments(facts, entries),
        _allergies(facts, entries),
        _vitals(facts, entries),
        _alerts(facts, entries),
        _complaints(facts, entries),
        _care_team(facts, entries),
        _identity(facts, patient_url),
    ]
    name = n.patient_name(patient)
    composition = {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "language": codes.LANGUAGE,
        "text": {"status": "generated", "div": n.div([
            f"<b>{n.e(codes.DOCUMENT_TITLE)}</b>",
            f"Patient : {n.e(name)}. Document établi le {n.e(n.date(facts.now))}, "
            "à valider par un médecin avant tout envoi au DMP."])},
        "identifier": {"system": codes.URI, "value": f"urn:uuid:{document_id or uuid.uuid4()}"},
        "status": "preliminary",
        "type": {"coding": [codes.DOCUMENT_TYPE], "text": "Synthèse patient (pré-DMP)"},
        "category": [{"coding": [codes.DOCUMENT_CLASS]}],
        "subject": {"reference": patient_url, "display": name},
        "date": facts.now,
        "author": [{"reference": device_url, "display": "Relais"}],
        "title": f"Pré-DMP de {name}",
        "confidentiality": "N",
        "section": sections,
    }
    device = {**PLATFORM_DEVICE, "id": device_url.rsplit(":", 1)[1]}
    return {
        "resourceType": "Bundle",
        "language": codes.LANGUAGE,
        "identifier": {"system": codes.URI, "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": facts.now,
        "entry": [{"fullUrl": f"urn:uuid:{composition['id']}", "resource": composition},
                  {"fullUrl": device_url, "resource": device}, *entries.entries],
    }


def _problems(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for condition in facts.conditions:
        since = condition.get("onsetDateTime") or condition.get("recordedDate")
        text = n.e(n.concept(condition.get("code")))
        items.append(text + (f" (depuis le {n.e(n.date(since))})" if since else ""))
        refs.append(entries.add(condition))
    return _section("problems", "Problèmes actifs", _loinc("11450-4", "Problem list - Reported"), [], items, refs)


def _treatments(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for request in facts.medications:
        medication = n.concept(request.get("medicationCodeableConcept")) if "medicationCodeableConcept" in request \
            else (request.get("medicationReference") or {}).get("display", "médicament non précisé")
        items.append(f"{n.e(medication)} : {n.e(n.dosage(request))}")
        refs.append(entries.add(request))
    return _section("treatments", "Traitements en cours",
                    _loinc("10160-0", "History of Medication use Narrative"), [], items, refs)


def _allergies(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for allergy in facts.allergies:
        reactions = [n.concept(m) for r in allergy.get("reaction") or [] for m in r.get("manifestation") or []]
        text = n.e(n.concept(allergy.get("code")))
        extra = [x for x in (n.criticality(allergy), ", ".join(reactions) if reactions else None) if x]
        items.append(text + (f" ({n.e('; '.join(extra))})" if extra else ""))
        refs.append(entries.add(allergy))
    return _section("allergies", "Allergies et intolérances",
                    _loinc("48765-2", "Allergies and adverse reactions Document"), [], items, refs)


def _vitals(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for latest, previous in facts.vitals:
        label = n.concept(latest.get("code"))
        items.append(f"{n.e(label)} : {n.e(n.observation_value(latest))} le {n.e(n.date(effective(latest)))} "
                     f"({n.e(n.trend(latest, previous))})")
        refs.append(entries.add(latest))
        if previous is not None:
            refs.append(entries.add(previous))
    paragraphs = ["Dernière mesure connue pour chaque signe vital, avec son évolution depuis la précédente."] \
        if items else []
    return _section("vital-signs", "Signes vitaux récents", _loinc("8716-3", "Vital signs"), paragraphs, items, refs)


def _alerts(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for task in facts.alerts:
        what = task.get("description") or n.concept(task.get("businessStatus") or task.get("code"))
        items.append(f"{n.e(n.date(task.get('authoredOn')))} : {n.e(what)} (alerte {n.e(n.task_status(task))}, "
                     f"priorité {n.e(n.priority(task.get('priority')))})")
        refs.append(entries.add(task))
    return _section("alerts", "Alertes récentes", _local("alerts", "Alertes de triage récentes"), [], items, refs)


def _complaints(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for resource in facts.complaints:
        if resource["resourceType"] == "Communication":
            texts = [p["contentString"] for p in resource.get("payload") or [] if p.get("contentString")]
            when = resource.get("sent") or resource.get("received")
        else:
            texts = [a["valueString"] for i in _items(resource.get("item") or [])
                     for a in i.get("answer") or [] if a.get("valueString")]
            when = resource.get("authored")
        if texts:
            items.append(f"{n.e(n.date(when))} : « {n.e(' '.join(texts))} »")
            refs.append(entries.add(resource))
    return _section("complaints", "Plaintes récentes", _loinc("10154-3", "Chief complaint Narrative - Reported"),
                    [], items, refs)


def _items(items: list[dict]) -> list[dict]:
    flat = []
    for item in items:
        flat.append(item)
        flat.extend(_items(item.get("item") or []))
    return flat


def _care_team(facts: Facts, entries: _Entries) -> dict:
    items, refs = [], []
    for member in facts.care_team:
        person = member.practitioner
        rpps = next((i["value"] for i in person.get("identifier") or [] if i.get("system") == RPPS), None)
        who = n.e(n.practitioner_name(person)) + (f" (RPPS {n.e(rpps)})" if rpps else "")
        items.append(f"{n.e(member.label)} : {who}, {n.e(n.telecom(person))}")
        refs.append(entries.add(person))
    paragraphs = ["Dans l'ordre où la coordination les appelle."] if items else []
    return _section("care-team", "Équipe de soins", _loinc("85847-2", "Patient Care team information"),
                    paragraphs, items, refs)


def _identity(facts: Facts, patient_url: str) -> dict:
    patient = facts.patient
    status = n.identity_status(patient)
    ins = n.ins(patient)
    items = [
        f"Nom : {n.e(n.patient_name(patient))}",
        f"Né(e) le : {n.e(n.date(patient.get('birthDate')))}",
        f"Sexe : {n.e(n.gender(patient))}",
        f"INS : {n.e(ins['value']) if ins else 'aucun'}",
        "Statut de l'identité : " + (f"{n.e(n.IDENTITY_STATUS_LABELS.get(status, status))} ({n.e(status)})"
                                     if status else "non renseigné"),
    ]
    warning = [] if status in ("VALI", "QUAL") else [
        "L'identité n'est pas qualifiée : le document ne pourra pas être validé ni envoyé au DMP "
        "tant que l'INS n'est pas qualifié."]
    return _section("identity", "Identité du patient", _local("identity", "Identité et fiabilité"),
                    warning, items, [patient_url])


def validated(document: dict, practitioner: dict, base: str, when: str, patient: dict | None = None) -> dict:
    """The final document: Composition ``final``, attested (mode ``legal``) by ``practitioner`` at ``when``.

    ``patient`` (as it stands now) refreshes the Patient entry and the identity section: the identity
    may have been qualified since the draft was built, and the document says what was true when signed.
    """
    final = copy.deepcopy(document)
    composition = final["entry"][0]["resource"]
    if patient is not None:
        url = f"{base}/Patient/{patient['id']}"
        for entry in final["entry"]:
            if entry.get("fullUrl") == url:
                entry["resource"] = patient
        composition["section"] = [_identity(Facts(patient=patient, now=when), url) if s.get("id") == "identity"
                                  else s for s in composition["section"]]
    url = f"{base}/Practitioner/{practitioner['id']}"
    if not any(entry.get("fullUrl") == url for entry in final["entry"]):
        final["entry"].append({"fullUrl": url, "resource": practitioner})
    composition["status"] = "final"
    composition["attester"] = [{"mode": "legal", "time": when,
                                "party": {"reference": url, "display": n.practitioner_name(practitioner)}}]
    composition["date"] = when
    composition["text"]["div"] = composition["text"]["div"].replace(
        "à valider par un médecin avant tout envoi au DMP.",
        f"validé le {n.e(n.date(when))} par {n.e(n.practitioner_name(practitioner))}.")
    final["timestamp"] = when
    return final


__all__ = ["build", "validated"]
