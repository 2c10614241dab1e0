"""``POST Type?criteria`` is a conditional create, as If-None-Exist is: fhirpy's ``get_or_create`` sends it."""

from __future__ import annotations

from fhirpy import SyncFHIRClient

INS = "urn:oid:1.2.250.1.213.1.4.8"


def _patients(server, value: str) -> list[dict]:
    found = server.get("Patient", params={"identifier": f"{INS}|{value}"}).json()
    return [e["resource"] for e in found.get("entry", [])]


def test_fhirpy_get_or_create_twice_makes_one_patient(server):
    client = SyncFHIRClient(server.base, extra_headers={"Accept": "application/fhir+json"})
    made = []
    for _ in range(2):
        patient = client.resource("Patient", identifier=[{"system": INS, "value": "1850312345678"}],
                                  name=[{"family": "Lefebvre"}])
        made.append(client.resources("Patient").search(identifier=f"{INS}|1850312345678").get_or_create(patient))
    (first, created), (second, again) = made
    assert created is True and again is False
    assert first.id == second.id
    assert [p["id"] for p in _patients(server, "1850312345678")] == [first.id]


def test_criteria_in_the_query_string_make_a_create_conditional(server):
    body = {"resourceType": "Patient", "identifier": [{"system": INS, "value": "Q1"}]}
    first = server.post(f"Patient?identifier={INS}|Q1", body)
    assert first.status_code == 201, first.text
    second = server.post(f"Patient?identifier={INS}|Q1&_format=json", body)
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert len(_patients(server, "Q1")) == 1
    # the same criteria in the header and the query string are one condition; different ones are refused
    same = server.post(f"Patient?identifier={INS}|Q1", body, headers={"If-None-Exist": f"identifier={INS}|Q1"})
    assert same.status_code == 200
    other = server.post(f"Patient?identifier={INS}|Q1", body, headers={"If-None-Exist": f"identifier={INS}|Q2"})
    assert other.status_code == 400
    unknown = server.post("Patient?no-such-parameter=1", body)
    assert unknown.status_code == 400
    assert len(_patients(server, "Q1")) == 1
