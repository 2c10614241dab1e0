"""``POST Patient/[id]/$pre-dmp``: the draft document, in French, and one current draft per patient."""

from __future__ import annotations

from fhir_server.resources import validate
from tests.predmp.predmpkit import platform_fixture  # noqa: F401 (fixture)

SECTIONS = ["Problèmes actifs", "Traitements en cours", "Allergies et intolérances", "Signes vitaux récents",
            "Alertes récentes", "Plaintes récentes", "Équipe de soins", "Identité du patient"]


def test_the_draft_is_a_french_fhir_document_in_a_binary_behind_a_preliminary_document_reference(platform):
    response = platform.build()
    assert response.status_code == 201, response.text
    docref = response.json()
    assert response.headers["Location"].endswith(f"/DocumentReference/{docref['id']}/_history/1")
    assert docref["docStatus"] == "preliminary" and docref["status"] == "current"
    assert docref["type"]["coding"][0]["code"] == "60591-5"
    assert docref["subject"] == {"reference": "Patient/p1"}
    document = platform.document(docref)
    validate(document, "Bundle")  # the R4 model: a valid Bundle with a valid Composition and entries
    assert document["type"] == "document" and document["identifier"]["value"].startswith("urn:uuid:")
    composition = document["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition" and composition["status"] == "preliminary"
    assert composition["language"] == "fr-FR"
    assert [s["title"] for s in composition["section"]] == SECTIONS
    text = {s["title"]: s["text"]["div"] for s in composition["section"]}
    assert all(s["text"]["status"] == "generated" for s in composition["section"])
    assert "Insuffisance cardiaque chronique" in text["Problèmes actifs"]
    assert "Furosémide 40 mg : 1 comprimé, 2 fois par jour, voie orale" in text["Traitements en cours"]
    assert "Pénicilline (criticité élevée; Urticaire)" in text["Allergies et intolérances"]
    # the latest weight, with its trend since the one before; blood pressure has no previous one
    assert "Poids corporel : 72,6 kg" in text["Signes vitaux récents"]
    assert "en hausse de 2,4 kg depuis le" in text["Signes vitaux récents"]
    assert "Systolique 135 mmHg, Diastolique 85 mmHg" in text["Signes vitaux récents"]
    assert "première mesure connue" in text["Signes vitaux récents"]
    assert "Prise de poids de 2,4 kg en 3 jours (alerte ouverte, priorité urgente)" in text["Alertes récentes"]
    assert "« Je suis essoufflée quand je monte l'escalier »" in text["Plaintes récentes"]
    care = text["Équipe de soins"]
    assert care.index("Médecin traitant : Dr Paul Durand (RPPS 10003456789), tél. +33 1 23 45 67 89") \
        < care.index("Infirmier(e) : Claire Petit")
    assert "Statut de l'identité : identité validée (VALI)" in text["Identité du patient"]
    assert "INS : 279035121518989" in text["Identité du patient"]
    # every section entry resolves inside the document
    urls = {e["fullUrl"] for e in document["entry"]}
    assert all(ref["reference"] in urls for s in composition["section"] for ref in s.get("entry", []))
    vitals = next(s for s in composition["section"] if s["title"] == "Signes vitaux récents")
    assert len(vitals["entry"]) == 3  # latest weight, the previous weight, blood pressure


def test_building_again_supersedes_the_previous_draft_one_current_draft_per_patient(platform):
    first = platform.build().json()
    second = platform.build().json()
    assert second["relatesTo"] == [{"code": "replaces", "target": {"reference": f"DocumentReference/{first['id']}"}}]
    assert platform.read(f"DocumentReference/{first['id']}")["status"] == "superseded"
    current = platform.search("DocumentReference?subject=Patient/p1&status=current")
    assert [d["id"] for d in current] == [second["id"]]


def test_an_empty_section_says_so_in_french_and_an_unknown_patient_is_404(platform):
    platform.seed([{"resourceType": "Patient", "id": "p2", "name": [{"family": "Seul"}]}])
    docref = platform.build("p2").json()
    sections = platform.document(docref)["entry"][0]["resource"]["section"]
    problems = sections[0]
    assert "Aucune information connue de la plateforme." in problems["text"]["div"]
    assert problems["emptyReason"]["text"] == "Aucune donnée disponible"
    assert "L'identité n'est pas qualifiée" in sections[-1]["text"]["div"]
    missing = platform.build("nobody")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_the_platform_writes_the_draft_as_relais_predmp_not_as_the_caller(platform):
    docref = platform.build().json()
    platform.drain()  # the request's and the job's AuditEvents are stored
    events = platform.search(f"AuditEvent?entity=DocumentReference/{docref['id']}&subtype=create")
    agents = {a["who"].get("identifier", {}).get("value") for e in events for a in e["agent"]}
    assert "relais-predmp" in agents


def test_concurrent_builds_leave_exactly_one_current_draft(platform):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: platform.build(), range(6)))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers if a.status_code != 201]
    current = platform.search("DocumentReference?subject=Patient/p1&status=current&_count=50")
    drafts = [d for d in current if d["docStatus"] == "preliminary"]
    assert len(drafts) == 1
    every = platform.search("DocumentReference?subject=Patient/p1&_count=50")
    assert len(every) == 6 and sum(d["status"] == "superseded" for d in every) == 5


def test_the_capability_statement_declares_both_operations(platform):
    metadata = platform.live.request("GET", "metadata").json()
    names = {o["name"] for o in metadata["rest"][0].get("operation", [])}
    assert {"pre-dmp", "validate-pre-dmp"} <= names


def test_the_latest_of_every_code_is_found_among_many_measures_and_a_year_old_one_is_not_recent(platform):
    from fhir_server import write as w
    from fhir_server.actor import SERVER
    from tests.predmp import records

    many = []
    for i in range(600):  # a telemonitored heart rate, every few minutes, more recent than the weights
        obs = records.weight(f"hr{i}", 60 + i % 30, records.days_ago(1 - i / 1000))
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Fréquence cardiaque"}]}
        obs["valueQuantity"] = {"value": 60 + i % 30, "unit": "/min", "system": "http://unitsofmeasure.org",
                                "code": "/min"}
        many.append(obs)
    old = records.weight("temp-old", 38.5, records.days_ago(400))
    old["code"] = {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Température"}]}
    changes = [w.Change(w.UPDATE, "Observation", id=o["id"], resource=o) for o in [*many, old]]
    w.write(platform.live.store, changes, SERVER)
    docref = platform.build().json()
    vitals = next(s for s in platform.document(docref)["entry"][0]["resource"]["section"]
                  if s["title"] == "Signes vitaux récents")["text"]["div"]
    assert "Fréquence cardiaque" in vitals and "Poids corporel : 72,6 kg" in vitals
    assert "Température" not in vitals
