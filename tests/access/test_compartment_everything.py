"""A patient-scoped client and Patient/$everything see the same compartment: R4's CompartmentDefinition."""

from __future__ import annotations

from tests.access.authkit import AuthServer, observation, sqlite_store_fixture  # noqa: F401 (fixture)

# Each names Patient/p1 in a parameter of R4's Patient compartment other than its subject.
PEOPLE = [
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
     "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Patient/p1"}]},
    {"resourceType": "Condition", "subject": {"reference": "Patient/p2"}, "asserter": {"reference": "Patient/p1"}},
    {"resourceType": "Communication", "status": "completed", "sender": {"reference": "Patient/p1"}},
]


def test_a_patient_scoped_client_and_everything_see_the_same_compartment(sqlite_store):
    live = AuthServer(sqlite_store)
    try:
        admin = live.client_token("system/*.cruds")
        for pid in ("p1", "p2"):
            assert live.request("PUT", f"Patient/{pid}", admin,
                                json={"resourceType": "Patient", "id": pid}).status_code in (200, 201)
        written = set()
        for resource in [*PEOPLE, observation("p1")]:
            response = live.request("POST", resource["resourceType"], admin, json=resource)
            assert response.status_code == 201, response.text
            written.add((resource["resourceType"], response.json()["id"]))
        everything = live.request("GET", "Patient/p1/$everything", admin).json()
        listed = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in everything["entry"]}
        token = live.client_token("patient/*.rs", patient="p1")
        for rtype, rid in written:
            readable = live.request("GET", f"{rtype}/{rid}", token).status_code == 200
            assert readable == ((rtype, rid) in listed), (rtype, rid)
            assert readable  # each names Patient/p1 in a parameter of R4's compartment
        assert listed - set(written) == {("Patient", "p1")}
    finally:
        live.close()
