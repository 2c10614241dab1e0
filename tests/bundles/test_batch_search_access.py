"""Search entries of a batch under a patient-scoped token: the same answer as REST search, nothing more."""

from __future__ import annotations

import pytest

from tests.access.authkit import AuthServer, observation, sqlite_store_fixture  # noqa: F401 (fixture)


@pytest.fixture(name="live")
def live_fixture(sqlite_store):
    server = AuthServer(sqlite_store)
    admin = server.client_token("system/*.cruds")
    gp = server.request("PUT", "Practitioner/gp", admin, json={"resourceType": "Practitioner", "id": "gp"})
    assert gp.status_code in (200, 201), gp.text
    for pid in ("p1", "p2", "p3"):
        put = server.request("PUT", f"Patient/{pid}", admin,
                             json={"resourceType": "Patient", "id": pid,
                                   "generalPractitioner": [{"reference": "Practitioner/gp"}]})
        assert put.status_code in (200, 201), put.text
    for pid in ("p1", "p1", "p2", "p2", "p3"):
        assert server.request("POST", "Observation", admin, json=observation(pid)).status_code == 201
    server.admin = admin
    yield server
    server.close()


def _batch(live: AuthServer, token: str, *urls: str) -> list[dict]:
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"request": {"method": "GET", "url": url}} for url in urls]}
    response = live.request("POST", "", token, json=bundle)
    assert response.status_code == 200, response.text
    return response.json()["entry"]


def test_a_batch_search_entry_does_not_leak_the_total(live):
    token = live.client_token("patient/*.rs", patient="p1")
    rest = live.request("GET", "Observation", token).json()
    assert "total" not in rest  # the REST front door hides it from a patient-scoped caller
    entry = _batch(live, token, "Observation")[0]
    assert entry["response"]["status"].startswith("200")
    searchset = entry["resource"]
    assert "total" not in searchset, searchset.get("total")  # 5: every patient's Observations
    assert [e["resource"]["subject"]["reference"] for e in searchset["entry"]] == ["Patient/p1"] * 2


SEARCHES = [
    "Observation",
    "Observation?subject=Patient/p2",
    "Observation?_summary=count",
    "Observation?_summary=true",
    "Observation?_elements=status",
    "Observation?_include=Observation:subject",
    "Patient?_revinclude=Observation:subject",
    "Patient?_include=Patient:general-practitioner",
    "Patient?_id=p1,p2&_revinclude=Observation:subject&_include:iterate=Observation:subject",
    "Practitioner",
    "Observation?_count=1&_sort=_lastUpdated",
    "Observation?no-such-parameter=1",
]


def _comparable(searchset: dict) -> dict:
    """What a searchset says, with paging links reduced to their relations (snapshot ids are random)."""
    entries = [(e.get("fullUrl"), e.get("search", {}).get("mode"), e["resource"]) for e in searchset.get("entry", [])]
    relations = sorted(link["relation"] for link in searchset.get("link", []))
    return {"total": searchset.get("total", "absent"), "relations": relations, "entries": entries}


@pytest.mark.parametrize("scopes", ["patient/*.rs", "system/*.rs"])
def test_rest_and_batch_search_entries_answer_the_same(live, scopes):
    token = live.client_token(scopes, patient="p1")
    answers = _batch(live, token, *SEARCHES)
    for url, answer in zip(SEARCHES, answers, strict=True):
        rest = live.request("GET", url, token)
        assert rest.status_code == 200, rest.text
        assert answer["response"]["status"].startswith("200"), answer
        assert _comparable(answer["resource"]) == _comparable(rest.json()), url
    if scopes.startswith("patient/"):
        by_url = dict(zip(SEARCHES, answers, strict=True))
        assert by_url["Observation?subject=Patient/p2"]["resource"]["entry"] == []
        assert "total" not in by_url["Observation?_summary=count"]["resource"]
        included = [e for e in by_url["Observation?_include=Observation:subject"]["resource"]["entry"]
                    if e["search"]["mode"] == "include"]
        assert [e["resource"]["id"] for e in included] == ["p1"]
        assert "next" in _comparable(by_url["Observation?_count=1&_sort=_lastUpdated"]["resource"])["relations"]


def test_a_batch_search_entry_pages_like_rest(live):
    token = live.client_token("patient/*.rs", patient="p1")
    first = _batch(live, token, "Observation?_count=1")[0]["resource"]
    following = live.request("GET", next(link["url"] for link in first["link"] if link["relation"] == "next")
                             .removeprefix(live.base), token)
    assert following.status_code == 200, following.text
    ids = [e["resource"]["id"] for page in (first, following.json()) for e in page["entry"]]
    assert len(set(ids)) == 2 and "total" not in following.json()
