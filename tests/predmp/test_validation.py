"""``POST DocumentReference/[id]/$validate-pre-dmp``: a doctor validates; refusals in French and English;
the validated document never changes again."""

from __future__ import annotations

import pytest

from tests.predmp import records
from tests.predmp.predmpkit import platform_fixture  # noqa: F401 (fixture)


def _languages(response) -> tuple[str, str]:
    issues = response.json()["issue"]
    assert len(issues) == 2
    return issues[0]["diagnostics"], issues[1]["diagnostics"]


def test_a_doctor_validates_the_current_draft(platform):
    draft = platform.build().json()
    response = platform.validate(draft["id"])
    assert response.status_code == 200, response.text
    final = response.json()
    assert final["docStatus"] == "final"
    assert final["authenticator"]["reference"] == "Practitioner/gp1"
    document = platform.document(final)
    composition = document["entry"][0]["resource"]
    assert composition["status"] == "final"
    assert composition["attester"][0]["mode"] == "legal"
    assert composition["attester"][0]["party"]["reference"].endswith("/Practitioner/gp1")
    assert "validé le" in composition["text"]["div"] and "Dr Paul Durand" in composition["text"]["div"]
    # the attachment describes the final content
    attachment = final["content"][0]["attachment"]
    assert attachment["size"] > 0 and len(attachment["hash"]) == 28  # base64 of 20 SHA-1 bytes
    provenance = platform.search(f"Provenance?target=DocumentReference/{draft['id']}")
    assert len(provenance) == 1
    assert provenance[0]["agent"][0]["who"]["reference"] == "Practitioner/gp1"
    assert provenance[0]["recorded"]


def test_a_caller_who_is_not_a_practitioner_is_refused_in_french_and_english(platform):
    draft = platform.build().json()
    response = platform.validate(draft["id"], token=platform.coordinator)
    assert response.status_code == 403
    french, english = _languages(response)
    assert "Seul un professionnel de santé" in french and "Only an identified health professional" in english
    # a fhirUser naming a Practitioner without RPPS or IDNPS is no better
    platform.seed([records.practitioner("anon", rpps=None, family="Sans")])
    nobody = platform.live.client_token("user/*.rs user/DocumentReference.cru", practitioner="anon")
    assert platform.validate(draft["id"], token=nobody).status_code == 403
    assert platform.read(f"DocumentReference/{draft['id']}")["docStatus"] == "preliminary"


@pytest.mark.parametrize("status", ["PROV", "RECUP"])
def test_a_patient_whose_ins_is_not_qualified_cannot_be_validated(platform, status):
    platform.seed([records.patient("p1", status=status)])
    draft = platform.build().json()
    response = platform.validate(draft["id"])
    assert response.status_code == 422
    french, english = _languages(response)
    assert f"L'INS du patient n'est pas qualifié (statut d'identité {status})" in french
    assert f"The patient's INS is not qualified (identity status {status})" in english


def test_a_draft_that_is_no_longer_current_is_refused(platform):
    first = platform.build().json()
    platform.build()
    response = platform.validate(first["id"])
    assert response.status_code == 409
    french, english = _languages(response)
    assert "n'est plus le brouillon en cours (il a été remplacé)" in french and "not the current one" in english


def test_a_validated_document_cannot_change_any_more(platform):
    draft = platform.build().json()
    final = platform.validate(draft["id"]).json()
    binary_path = final["content"][0]["attachment"]["url"]
    changed = {**final, "description": "réécrit"}
    for response in (
        platform.put(changed),
        platform.live.request("PATCH", f"DocumentReference/{final['id']}", platform.admin,
                              json=[{"op": "replace", "path": "/docStatus", "value": "preliminary"}],
                              headers={"Content-Type": "application/json-patch+json"}),
        platform.live.request("DELETE", f"DocumentReference/{final['id']}", platform.admin),
        platform.live.request("DELETE", binary_path, platform.admin),
        platform.put({**platform.read(binary_path), "data": "AAAA"}),
    ):
        assert response.status_code == 409, response.text
        assert "document validé" in response.json()["issue"][0]["diagnostics"]
    # a transaction cannot either
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": f"DocumentReference/{final['id']}"}}]}
    assert platform.live.request("POST", "", platform.admin, json=bundle).status_code == 409
    # validating it again is refused, and it is still there, final
    again = platform.validate(draft["id"])
    assert again.status_code == 409 and "déjà validé" in again.json()["issue"][0]["diagnostics"]
    assert platform.read(f"DocumentReference/{final['id']}")["docStatus"] == "final"


def test_only_the_platform_locks_a_document(platform):
    forged = {"resourceType": "DocumentReference", "id": "forged", "status": "current", "docStatus": "final",
              "meta": {"tag": [{"system": "https://relais.example/fhir/CodeSystem/lock", "code": "locked"}]},
              "subject": {"reference": "Patient/p1"},
              "content": [{"attachment": {"contentType": "text/plain", "data": "YQ=="}}]}
    response = platform.put(forged)
    assert response.status_code == 403 and "Seule la plateforme verrouille" in response.text
    assert platform.live.request("GET", "DocumentReference/forged", platform.admin).status_code == 404


def test_an_identity_qualified_after_the_build_is_what_the_validated_document_says(platform):
    platform.seed([records.patient("p1", status="PROV")])
    draft = platform.build().json()
    identity = platform.document(draft)["entry"][0]["resource"]["section"][-1]["text"]["div"]
    assert "identité provisoire (PROV)" in identity and "n'est pas qualifiée" in identity
    platform.seed([records.patient("p1", status="QUAL")])
    final = platform.validate(draft["id"]).json()
    identity = platform.document(final)["entry"][0]["resource"]["section"][-1]
    assert identity["id"] == "identity"
    text = identity["text"]["div"]
    assert "identité qualifiée (QUAL)" in text and "n'est pas qualifiée" not in text
