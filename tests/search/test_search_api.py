"""REST search over the Synthea data, on SQLite and MongoDB (mongomock): answers checked by plain Python scans.

Resources are loaded through the REST API (PUT Type/id), then each search's answer is compared with
what a direct look at the fixture JSON says, without the search engine's own code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from kit.live import relais_app
from kit.stores import close_store, make_store
from search_fixtures import synthea_linked

from fhir_server.resources import is_supported
from fhir_server.search.parser import parse

BASE = "http://relais.test/fhir"
LIZ = "ee9f8dd8-72d2-4769-8020-89e504b1504b"
BUSTER = "e4531916-b162-4f4b-90c2-ce37e132b8d4"


def loaded_resources() -> list[dict]:
    return [r for r in synthea_linked() if is_supported(r["resourceType"])]


class Client:
    def __init__(self, app):
        self.app = app
        self.http = app.test_client()

    def get(self, path: str, **kw):
        return self.http.get(
            f"/fhir/{path}", headers={"Accept": "application/fhir+json", **kw.pop("headers", {})}, **kw
        )

    def bundle(self, path: str, **kw) -> dict:
        r = self.get(path, **kw)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def follow(self, url: str) -> dict:
        parts = urlsplit(url)
        assert url.startswith(BASE)
        # Paging links point at the base itself: [base]?_getpages=...
        return self.bundle(parts.path.removeprefix("/fhir").lstrip("/") + "?" + parts.query)

    def all_pages(self, path: str) -> list[dict]:
        bundle = self.bundle(path)
        entries = list(bundle.get("entry", []))
        pages = 1
        while nxt := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
            bundle = self.follow(nxt)
            entries.extend(bundle.get("entry", []))
            pages += 1
            assert pages < 200
        return entries


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    store = make_store(request.param, tmp_path_factory.mktemp(request.param))
    client = Client(relais_app(store, BASE))
    for r in loaded_resources():
        resp = client.http.put(
            f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers={"Content-Type": "application/fhir+json"}
        )
        assert resp.status_code in (200, 201), resp.get_json()
    yield client
    close_store(store)


def ids(entries: list[dict], mode: str = "match") -> set[str]:
    return {e["resource"]["id"] for e in entries if e.get("search", {}).get("mode") == mode}


def of_type(rtype: str) -> list[dict]:
    return [r for r in loaded_resources() if r["resourceType"] == rtype]


def codes(cc: dict) -> set[tuple[str, str]]:
    return {(c.get("system"), c.get("code")) for c in cc.get("coding", [])}


# --- plain scans vs the server -------------------------------------------------------------------


def test_token_search_pages_through_everything(api: Client) -> None:
    expected = {o["id"] for o in of_type("Observation") if ("http://loinc.org", "8302-2") in codes(o["code"])}
    assert expected
    got = api.all_pages("Observation?code=http://loinc.org|8302-2&_count=2")
    assert ids(got) == expected
    assert len(got) == len(expected)  # no entry twice across pages


def test_reference_search_and_total(api: Client) -> None:
    expected = {o["id"] for o in of_type("Observation") if o["subject"]["reference"] == f"Patient/{LIZ}"}
    bundle = api.bundle(f"Observation?subject=Patient/{LIZ}&_count=1000")
    assert bundle["total"] == len(expected)
    assert ids(bundle["entry"]) == expected


def test_string_search_is_accent_and_case_insensitive(api: Client) -> None:
    expected = {
        p["id"] for p in of_type("Patient") for n in p["name"] for part in [n["family"], *n.get("given", [])]
        if part.lower().startswith("bust")
    }  # fmt: skip
    assert ids(api.bundle("Patient?name=BÜST")["entry"]) == expected == {BUSTER}


def test_date_range(api: Client) -> None:
    expected = {o["id"] for o in of_type("Observation") if "2015" <= o["effectiveDateTime"][:4] < "2017"}
    assert expected
    got = api.all_pages("Observation?date=ge2015&date=lt2017&_count=50")
    assert ids(got) == expected


def test_quantity_with_unit(api: Client) -> None:
    expected = {
        o["id"] for o in of_type("Observation")
        if o.get("valueQuantity", {}).get("code") == "kg" and o["valueQuantity"]["value"] > 80
    }  # fmt: skip
    assert expected
    got = api.all_pages("Observation?value-quantity=gt80|http://unitsofmeasure.org|kg")
    assert ids(got) == expected


def test_component_code_value_quantity(api: Client) -> None:
    def systolic_over(o: dict, limit: float) -> bool:
        return any(
            ("http://loinc.org", "8480-6") in codes(c["code"]) and c.get("valueQuantity", {}).get("value", 0) > limit
            for c in o.get("component", [])
        )

    expected = {o["id"] for o in of_type("Observation") if systolic_over(o, 130)}
    assert expected
    got = api.all_pages("Observation?component-code-value-quantity=http://loinc.org|8480-6$gt130")
    assert ids(got) == expected


def test_sort_descending_by_date(api: Client) -> None:
    obs = [o for o in of_type("Observation") if ("http://loinc.org", "29463-7") in codes(o["code"])]
    got = api.all_pages("Observation?code=http://loinc.org|29463-7&_sort=-date&_count=4")
    got_dates = [e["resource"]["effectiveDateTime"] for e in got]
    assert got_dates == sorted((o["effectiveDateTime"] for o in obs), reverse=True)


def test_sort_by_last_updated_then_id(api: Client) -> None:
    pats = of_type("Patient")
    got = api.bundle("Patient?_sort=-_lastUpdated")["entry"]
    assert [e["resource"]["id"] for e in got] == [
        p["id"] for p in sorted(pats, key=lambda p: p["meta"]["lastUpdated"], reverse=True)
    ]


def test_chain_and_has(api: Client) -> None:
    expected = {o["id"] for o in of_type("Observation") if o["subject"]["reference"] == f"Patient/{LIZ}"}
    assert ids(api.all_pages("Observation?subject:Patient.name=liz")) == expected
    weights = {
        o["subject"]["reference"].split("/")[1] for o in of_type("Observation")
        if o.get("valueQuantity", {}).get("code") == "kg" and o["valueQuantity"]["value"] > 80
    }  # fmt: skip
    assert ids(api.all_pages("Patient?_has:Observation:subject:value-quantity=gt80||kg")) == weights


def test_include_and_revinclude(api: Client) -> None:
    bundle = api.bundle("Observation?code=http://loinc.org|8302-2&_include=Observation:subject")
    subjects = {
        e["resource"]["subject"]["reference"].split("/")[1] for e in bundle["entry"] if e["search"]["mode"] == "match"
    }
    assert ids(bundle["entry"], "include") == subjects
    bundle = api.bundle(f"Patient?_id={BUSTER}&_revinclude=Encounter:subject")
    expected = {e["id"] for e in of_type("Encounter") if e["subject"]["reference"] == f"Patient/{BUSTER}"}
    assert expected and ids(bundle["entry"], "include") == expected
    assert ids(bundle["entry"]) == {BUSTER}


def test_include_iterate(api: Client) -> None:
    bundle = api.bundle(
        "Observation?code=http://loinc.org|8302-2&_include=Observation:encounter&_include:iterate=Encounter:participant"
    )
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    types = {r["resourceType"] for r in included}
    assert types == {"Encounter", "Practitioner"}


def test_summary_count_and_elements(api: Client) -> None:
    n = len(of_type("Observation"))
    bundle = api.bundle("Observation?_summary=count")
    assert bundle["total"] == n and not bundle.get("entry")
    bundle = api.bundle("Observation?_elements=code&_count=3")
    for e in bundle["entry"]:
        r = e["resource"]
        assert set(r) <= {"resourceType", "id", "meta", "code", "status"}
        assert any(t["code"] == "SUBSETTED" for t in r["meta"]["tag"])
    bundle = api.bundle("Patient?_summary=true")
    assert all("text" not in e["resource"] and "address" in e["resource"] for e in bundle["entry"])


def test_total_none_and_paging_links(api: Client) -> None:
    bundle = api.bundle("Observation?_total=none&_count=5")
    assert "total" not in bundle
    assert len(bundle["entry"]) == 5
    bundle = api.bundle("Observation?_count=5&_offset=5")
    rel = {link["relation"]: link["url"] for link in bundle["link"]}
    assert set(rel) == {"self", "first", "previous", "next", "last"}
    # _offset starts a snapshot: every link pages it, previous goes back to the first page.
    offsets = {r: dict(parse_qsl(urlsplit(u).query)).get("_getpagesoffset") for r, u in rel.items()}
    assert offsets["self"] == "5" and offsets["previous"] == offsets["first"] == "0" and offsets["next"] == "10"
    last = api.follow(rel["last"])
    assert "next" not in {link["relation"] for link in last["link"]}


def test_post_search_form(api: Client) -> None:
    r = api.http.post(
        "/fhir/Observation/_search",
        data={"code": "http://loinc.org|8302-2"},
        headers={"Accept": "application/fhir+json"},
    )
    assert r.status_code == 200
    expected = {o["id"] for o in of_type("Observation") if ("http://loinc.org", "8302-2") in codes(o["code"])}
    assert ids(r.get_json()["entry"]) == expected


def test_unknown_parameter_warns_or_fails(api: Client) -> None:
    bundle = api.bundle("Patient?shoe-size=42")
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "shoe-size" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    r = api.get("Patient?shoe-size=42", headers={"Prefer": "handling=strict"})
    assert r.status_code == 400
    assert r.get_json()["resourceType"] == "OperationOutcome"
    assert api.get("Observation?date=yesterday").status_code == 400


def test_everything(api: Client) -> None:
    bundle = api.bundle(f"Patient/{LIZ}/$everything")
    got = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    expected = {("Patient", LIZ)}
    for r in loaded_resources():
        for field in ("subject", "patient"):
            if r.get(field, {}).get("reference") == f"Patient/{LIZ}":
                expected.add((r["resourceType"], r["id"]))
    assert expected <= got
    assert {t for t, _ in got} >= {"Patient", "Observation", "Encounter"}
    assert all(not (t == "Patient" and i != LIZ) for t, i in got)
    assert api.get("Patient/nobody/$everything").status_code == 404


def test_accented_names_and_french_identifiers(api: Client) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "helene",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "2480375123456"}],
        "name": [{"family": "Lefèvre", "given": ["Hélène"]}],
        "birthDate": "1948-03",
    }
    r = api.http.put("/fhir/Patient/helene", json=patient, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201)
    assert ids(api.bundle("Patient?given=helene")["entry"]) == {"helene"}
    assert ids(api.bundle("Patient?family=LEFEVRE")["entry"]) == {"helene"}
    assert ids(api.bundle("Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|2480375123456")["entry"]) == {"helene"}
    assert ids(api.bundle("Patient?birthdate=1948-03")["entry"]) == {"helene"}
    assert ids(api.bundle("Patient?birthdate=1948-03-10")["entry"]) == set()


# --- the SQLite plan -----------------------------------------------------------------------------


# Searches with a selective indexed parameter: no backend may scan a whole collection for them.
SELECTIVE = [
    "Observation?code=http://loinc.org|8302-2",
    f"Observation?subject=Patient/{LIZ}&code=http://loinc.org|8302-2&date=ge2015",
    "Patient?name=liz",
    "Patient?identifier=http://hl7.org/fhir/sid/us-ssn|999-59-2277",
    "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt130",
]


@pytest.mark.parametrize(
    "url",
    [
        *SELECTIVE,
        "Observation?date=ge2019-12-01",
        "Observation?subject:Patient.identifier=http://hl7.org/fhir/sid/us-ssn|999-59-2277",
    ],
)
def test_selective_searches_use_indexes(tmp_path: Path, url: str) -> None:
    store = make_store("sqlite", tmp_path)
    try:
        rtype, _, qs = url.partition("?")
        plan = store.explain(parse(rtype, parse_qsl(qs)))
        scans = [line for line in plan if line.startswith("SCAN") and "CONSTANT" not in line]
        assert not scans, plan
        assert any("INDEX si_" in line for line in plan), plan
    finally:
        store.close()


def _stages(plan: dict | list) -> list[str]:
    """Every stage name in a MongoDB explain() plan tree."""
    if isinstance(plan, list):
        return [stage for item in plan for stage in _stages(item)]
    found = [plan["stage"]] if "stage" in plan else []
    for key in ("inputStage", "inputStages", "queryPlan", "winningPlan", "shards"):
        if key in plan:
            found.extend(_stages(plan[key]))
    return found


@pytest.mark.skipif(not os.environ.get("RELAIS_TEST_MONGODB_URI"),
                    reason="explain() needs a real MongoDB (mongomock has none): set RELAIS_TEST_MONGODB_URI")
@pytest.mark.parametrize("url", SELECTIVE)
def test_selective_searches_use_indexes_on_mongodb(url: str) -> None:
    store = make_store("mongodb", Path("."))
    try:
        rtype, _, qs = url.partition("?")
        stages = _stages(store.explain(parse(rtype, parse_qsl(qs)))["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in stages and "IXSCAN" in stages, stages
    finally:
        close_store(store)


def test_updates_and_deletes_change_what_is_found(api: Client) -> None:
    headers = {"Content-Type": "application/fhir+json"}
    obs = {
        "resourceType": "Observation",
        "id": "moving",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{LIZ}"},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    assert api.http.put("/fhir/Observation/moving", json=obs, headers=headers).status_code in (200, 201)
    assert ids(api.bundle("Observation?code=8867-4&value-quantity=88")["entry"]) == {"moving"}
    obs["valueQuantity"]["value"] = 120
    assert api.http.put("/fhir/Observation/moving", json=obs, headers=headers).status_code == 200
    assert ids(api.bundle("Observation?code=8867-4&value-quantity=88")["entry"]) == set()
    assert ids(api.bundle("Observation?code=8867-4&value-quantity=gt100")["entry"]) == {"moving"}
    assert api.http.delete("/fhir/Observation/moving").status_code in (200, 204)
    assert ids(api.bundle("Observation?code=8867-4")["entry"]) == set()
    assert ids(api.bundle("Patient?_has:Observation:subject:code=8867-4")["entry"]) == set()


def test_everything_pages(api: Client) -> None:
    whole = api.bundle(f"Patient/{BUSTER}/$everything")
    entries = api.all_pages(f"Patient/{BUSTER}/$everything?_count=7")
    assert len(entries) == whole["total"] == len(whole["entry"]) > 7
    keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries]
    assert len(set(keys)) == len(keys)
    assert keys[0] == ("Patient", BUSTER)
    assert api.get(f"Patient/{BUSTER}/$everything?_count=x").status_code == 400
