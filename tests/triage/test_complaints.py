"""Alarming complaints in French free text: Communications and QuestionnaireResponses, negation respected."""

from __future__ import annotations

import pytest
from test_default_rules import fired
from triagekit import inputs, triage_tasks


def communication(text: str, patient: str = "p1") -> dict:
    return {"resourceType": "Communication", "status": "completed", "subject": {"reference": f"Patient/{patient}"},
            "sent": "2026-11-20T08:00:00Z", "payload": [{"contentString": text}]}


def answers(*texts: str, patient: str = "p1") -> dict:
    return {"resourceType": "QuestionnaireResponse", "status": "completed",
            "subject": {"reference": f"Patient/{patient}"}, "authored": "2026-11-20T08:00:00Z",
            "item": [{"linkId": str(i), "answer": [{"valueString": t}]} for i, t in enumerate(texts)]}


@pytest.mark.parametrize("text, expected", [
    ("Depuis ce matin il est très essoufflé au moindre effort", "urgent"),
    ("Ma mère a fait une chute dans la salle de bain", "urgent"),
    ("Elle a des douleurs thoraciques depuis une heure", "stat"),
    ("DOULEUR THORACIQUE ce matin", "stat"),
    ("pas de douleur thoracique, pas d'essoufflement", None),
    ("Il n'est plus essoufflé depuis le changement de traitement", None),
    ("Tout va bien, il a bien mangé", None),
])
def test_communications(store, text, expected):
    assert fired(store, communication(text)).get("alarming-complaint") == expected


def test_questionnaire_answers(store):
    assert fired(store, answers("Non", "Un peu de malaise en fin de journée"))["alarming-questionnaire-answer"] \
        == "urgent"
    assert fired(store, answers("aucune chute cette semaine", "Non")) == {}


def test_a_complaint_posted_over_rest_raises_a_task_that_quotes_it(server):
    server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
    assert server.post("Communication", communication("J'ai mal à la poitrine et je suis essoufflée")).ok
    [task] = triage_tasks(server)
    assert task["priority"] == "stat" and task["reasonCode"]["coding"][0]["code"] == "alarming-complaint"
    said = dict(inputs(task))
    assert said["Plainte : Douleur thoracique : observé"].startswith("« mal à la poitrine")
    assert "Plainte : Essoufflement : observé" in said
