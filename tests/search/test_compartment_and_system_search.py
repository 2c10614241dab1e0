"""Compartment search (GET Patient/[id]/[type]?...) and search across types (GET [base]?_type=...), over HTTP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.access.authkit import AuthServer, sqlite_store_fixture  # noqa: F401 (fixture)


def obs(patient: str, code: str, **extra) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "urn:t", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}, **extra}


def ids(bundle: dict, mode: str = "match") -> list[tuple[str, str]]:
    return [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle.get("entry", [])
            if e["search"]["mode"] == mode]


def follow(server, url: str) -> dict:
    parts = urlsplit(url)
    response = server.http.get(f"{server.origin}{parts.path}?{parts.query}")
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(server, path: str, **params) -> list[tuple[str, str]]:
    bundle = server.get(path, params=params).json()
    found = ids(bundle)
    while nxt := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
        bundle = follow(server, nxt)
        found += ids(bundle)
    return found


@pytest.fixture
def people(server):
    for pid in ("p1", "p2"):
        assert server.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid}).status_code in (200, 201)
    server.put("Patient/p3", {"resourceType": "Patient", "id": "p3",
                              "link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]})
    made = {}
    for key, body in {
        "o1": obs("p1", "a"), "o2": obs("p1", "b"), "o3": obs("p2", "a"),
        # In p1's compartment through performer, not subject.
        "o4": obs("p2", "a", performer=[{"reference": "Patient/p1"}]),
        "c1": {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "code": {"text": "x"}},
        "c2": {"resourceType": "Condition", "subject": {"reference": "Patient/p2"}},
    }.items():
        response = server.post(body["resourceType"], body)
        assert response.status_code == 201, response.text
        made[key] = response.json()["id"]
    return made


def test_a_compartment_search_ors_the_compartment_parameters_and_ands_the_query(server, people):
    found = ids(server.get("Patient/p1/Observation").json())
    assert sorted(found) == sorted(("Observation", people[k]) for k in ("o1", "o2", "o4"))
    narrowed = server.get("Patient/p1/Observation", params={"code": "urn:t|a"}).json()
    assert sorted(ids(narrowed)) == sorted(("Observation", people[k]) for k in ("o1", "o4"))
    assert narrowed["total"] == 2
    assert narrowed["link"][0]["url"].startswith(server.base + "/Patient/p1/Observation?code=")
    assert ids(server.get("Patient/p2/Condition").json()) == [("Condition", people["c2"])]
    assert ids(server.get("Patient/nobody/Observation").json()) == []
    # The patient itself and the patients that link to it.
    assert sorted(ids(server.get("Patient/p1/Patient").json())) == [("Patient", "p1"), ("Patient", "p3")]


def test_a_compartment_search_pages_includes_and_summarises(server, people):
    paged = all_pages(server, "Patient/p1/Observation", _count="1", _sort="_id")
    assert paged == sorted(("Observation", people[k]) for k in ("o1", "o2", "o4"))
    included = server.get("Patient/p1/Condition", params={"_include": "Condition:subject"}).json()
    assert ids(included, "include") == [("Patient", "p1")]
    counted = server.get("Patient/p1/Observation", params={"_summary": "count"}).json()
    assert counted["total"] == 3 and not counted.get("entry")
    every = all_pages(server, "Patient/p1/*", _count="2")
    assert sorted(every) == sorted([("Patient", "p1"), ("Patient", "p3"), ("Condition", people["c1"]),
                                    *(("Observation", people[k]) for k in ("o1", "o2", "o4"))])


def test_compartment_search_refusals(server, people):
    assert server.get("Patient/p1/Organization").status_code == 400  # not in the Patient compartment
    assert server.get("Patient/p1/Nothing").status_code == 404
    assert server.get("Patient/p1/Observation", params={"date": "yesterday"}).status_code == 400
    # _history and operations keep their own routes.
    assert server.get("Patient/p1/_history").json()["type"] == "history"
    assert server.get("Patient/p1/$everything").json()["type"] == "searchset"


def test_a_search_across_types(server, people):
    both = server.get("", params={"_type": "Observation,Condition", "_lastUpdated": "ge2000-01-01"}).json()
    assert both["total"] == 6 and len(ids(both)) == 6
    assert {t for t, _ in ids(both)} == {"Observation", "Condition"}
    assert both["link"][0]["url"].startswith(server.base + "?_type=Observation")
    one = server.get("", params={"_type": "Observation", "_id": people["o3"]}).json()
    assert ids(one) == [("Observation", people["o3"])]
    paged = all_pages(server, "", _type="Observation,Condition", _count="4")
    assert sorted(paged) == sorted(ids(both)) and len(paged) == 6
    # A parameter both types have (subject), with includes.
    subject = server.get("", params={"_type": "Observation,Condition", "subject": "Patient/p2",
                                     "_include": "Observation:subject"}).json()
    assert sorted(ids(subject)) == sorted([("Observation", people["o3"]), ("Observation", people["o4"]),
                                           ("Condition", people["c2"])])
    assert ids(subject, "include") == [("Patient", "p2")]
    posted = server.http.post(server.url("_search"), data={"_type": "Condition", "subject": "Patient/p1"})
    assert posted.status_code == 200 and ids(posted.json()) == [("Condition", people["c1"])]


def test_search_across_types_refusals(server, people):
    assert server.get("").status_code == 400  # _type is required, as HAPI FHIR requires a type
    assert server.get("", params={"_type": "Observation,Condition", "code": "urn:t|a",
                                  "value-quantity": "5"}).status_code == 400  # Condition has no value-quantity
    assert server.get("", params={"_type": "Observation,Nothing"}).status_code == 400
    assert server.get("", params={"_type": "Observation,Condition", "_sort": "_id"}).status_code == 400


def test_access_filtering_applies_to_both(sqlite_store):
    live = AuthServer(sqlite_store)
    try:
        admin = live.client_token("system/*.cruds")
        for pid in ("p1", "p2"):
            live.request("PUT", f"Patient/{pid}", admin, json={"resourceType": "Patient", "id": pid})
        mine = live.request("POST", "Observation", admin, json=obs("p1", "a")).json()["id"]
        live.request("POST", "Observation", admin, json={**obs("p2", "a"), "performer": [
            {"reference": "Patient/p1"}]})
        theirs = live.request("POST", "Observation", admin, json=obs("p2", "b")).json()["id"]
        token = live.client_token("patient/*.rs", patient="p1")
        seen = live.request("GET", "Patient/p2/Observation", token).json()
        # p2's observation that names p1 as performer is in p1's compartment too: the only one shown.
        assert ("Observation", theirs) not in ids(seen) and "total" not in seen
        across = live.request("GET", "", token, params={"_type": "Observation,Patient"}).json()
        assert ("Observation", mine) in ids(across) and ("Observation", theirs) not in ids(across)
        assert ("Patient", "p2") not in ids(across) and "total" not in across
        observations_only = live.client_token("system/Observation.rs")
        assert live.request("GET", "", observations_only, params={"_type": "Observation,Patient"}).status_code == 403
    finally:
        live.close()
