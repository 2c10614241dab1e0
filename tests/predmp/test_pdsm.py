"""The ITI-65 Bundle Relais sends, checked against the constraints of the ANS PDSm 3.1.1 profiles
(``ansforge/IG-fhir-partage-de-documents-de-sante``, ``input/fsh/profiles/``), and each constraint shown to bite."""

from __future__ import annotations

import copy

import pytest

from fhir_server.resources import validate
from predmp import codes
from predmp.document import build, validated
from predmp.drafts import content_bytes, document_reference
from predmp.gather import Facts
from predmp.mhd import Replaced, provide_bundle
from predmp.pdsm import bundle_issues
from tests.predmp import records

NOW = "2026-12-06T10:00:00Z"


def _local(document: dict, doc_id: str = "d1") -> tuple[dict, bytes]:
    final = validated(document, records.practitioner(), "http://relais.test/fhir", NOW)
    data = content_bytes(final)
    local = document_reference(doc_id, "p1", final, data, "b1", NOW, [])
    local.update(docStatus="final", authenticator={"reference": "Practitioner/gp1"})
    return local, data


def sample(replacing: bool = False) -> dict:
    document = build(Facts(patient=records.patient(), now=NOW), "http://relais.test/fhir")
    local, data = _local(document)
    replaces = None
    if replacing:
        old, old_data = _local(document, "d0")
        replaces = Replaced(old, "DocumentReference/7", "Binary/8", records.practitioner())
        return provide_bundle(local, data, records.patient(), records.practitioner(), "1.2.250.1.999.1", NOW,
                              replaces, old_data)
    return provide_bundle(local, data, records.patient(), records.practitioner(), "1.2.250.1.999.1", NOW)


def test_the_bundle_relais_sends_meets_every_pdsm_constraint_and_the_r4_model():
    for bundle in (sample(), sample(replacing=True)):
        assert bundle_issues(bundle) == []
        validate(bundle, "Bundle")
        for entry in bundle["entry"]:
            validate(entry["resource"], entry["resource"]["resourceType"])
    replacing = sample(replacing=True)
    assert replacing["entry"][1]["resource"]["relatesTo"] == [
        {"code": "replaces", "target": {"identifier": replacing["entry"][3]["resource"]["masterIdentifier"],
                                        "reference": "DocumentReference/7"}}]
    assert replacing["entry"][3]["request"] == {"method": "PUT", "url": "DocumentReference/7"}


def _doc(bundle: dict) -> dict:
    return bundle["entry"][1]["resource"]


def _list(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


# (what the profile says, how a Bundle breaks it, what the check reports)
BREAKS = [
    ("DocumentReference: * custodian 1..", lambda b: _doc(b).pop("custodian"), "custodian : élément obligatoire"),
    ("DocumentReference: * contained 1..", lambda b: _doc(b).pop("contained"), "contained : élément obligatoire"),
    ("DocumentReference: * date 1..", lambda b: _doc(b).pop("date"), "date : élément obligatoire"),
    ("DocumentReference: * author 1..", lambda b: _doc(b).pop("author"), "author : élément obligatoire"),
    ("author only Reference(AsPractitioner...)", lambda b: _doc(b)["contained"][0]["identifier"].clear(),
     "ni RPPS ni IDNPS"),
    ("* content.attachment.size 1..", lambda b: _doc(b)["content"][0]["attachment"].pop("size"),
     "attachment.size : élément obligatoire"),
    ("* content.attachment.hash 1.. (SHA-1)", lambda b: _doc(b)["content"][0]["attachment"].update(hash="AAAA"),
     "ne correspond pas au SHA-1"),
    ("* content.attachment.title 1..", lambda b: _doc(b)["content"][0]["attachment"].pop("title"),
     "attachment.title : élément obligatoire"),
    ("* context.period.start 1..", lambda b: _doc(b)["context"]["period"].pop("start"), "period.start"),
    ("securityLabel contains confidentiality 1..1 (required)",
     lambda b: _doc(b)["securityLabel"][0]["coding"][0].update(code="X"), "niveau de confidentialité"),
    ("constr-bind-type", lambda b: _doc(b)["type"]["coding"][0].update(system="http://snomed.info/sct"),
     ".type : code hors"),
    ("constr-bind-category", lambda b: _doc(b)["category"][0]["coding"][0].update(system=codes.LOINC),
     ".category : code hors"),
    ("constr-bind-format", lambda b: _doc(b)["content"][0]["format"].update(system="http://snomed.info/sct"),
     ".format : code hors"),
    ("constr-bind-ProducteurDoc (the worked example's SNOMED facilityType)",
     lambda b: _doc(b)["context"]["facilityType"]["coding"][0].update(system="http://snomed.info/sct",
                                                                      code="22232009"), "facilityType : code hors"),
    ("constr-bind-ProducteurDoc (practiceSetting)",
     lambda b: _doc(b)["context"]["practiceSetting"]["coding"][0].update(system="http://snomed.info/sct"),
     "practiceSetting : code hors"),
    ("masterIdentifier: urn:oid", lambda b: _doc(b)["masterIdentifier"].update(value="urn:uuid:x"), "urn:oid"),
    ("subject: conditional reference on the INS", lambda b: _doc(b).update(subject={"reference": "Patient/p1"}),
     "référence conditionnelle"),
    ("Bundle: * entry[Patient] 0..0", lambda b: b["entry"].append(
        {"fullUrl": "urn:uuid:p", "resource": records.patient(), "request": {"method": "POST", "url": "Patient"}}),
     "interdit la ressource Patient"),
    ("Bundle: * entry[DocumentRefs].resource 1..", lambda b: b["entry"].pop(1), "au moins un DocumentReference"),
    ("SubmissionSet: * extension 2.. (sourceId)", lambda b: _list(b)["extension"].pop(1), "sourceId absente"),
    ("SubmissionSet: designationType", lambda b: _list(b)["extension"].pop(0), "designationType absente"),
    ("SubmissionSet: sourcePatientId", lambda b: _list(b)["extension"].pop(2), "sourcePatientId absente"),
    ("SubmissionSet: * source 1..", lambda b: _list(b).pop("source"), "source : élément obligatoire"),
    ("SubmissionSet: * contained 1..", lambda b: _list(b).pop("contained"), "contained : élément obligatoire"),
    ("SubmissionSet: code submissionset", lambda b: _list(b)["code"]["coding"][0].update(code="folder"),
     "lot de soumission"),
    ("relatesTo 1..1 on a replacement; the replaced one sent superseded",
     lambda b: _doc(b).update(relatesTo=[{"code": "replaces", "target": {"reference": "DocumentReference/7"}}]),
     "superseded"),
    ("ITI-65 is a transaction", lambda b: b.update(type="batch"), "transaction"),
]


@pytest.mark.parametrize("rule, breaking, reported", BREAKS, ids=[b[0] for b in BREAKS])
def test_each_pdsm_constraint_is_checked(rule, breaking, reported):
    bundle = copy.deepcopy(sample())
    breaking(bundle)
    issues = bundle_issues(bundle)
    assert any(reported in issue for issue in issues), (rule, issues)
