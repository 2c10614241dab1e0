"""Size limits (fhir_server/limits.py) and hostile numbers through the served app: a 413 or a 422 naming the
element, never a worker held for tens of seconds, never a 500."""

from __future__ import annotations

import json

import pytest
from kit.live import serve
from kit.samples import observation
from kit.stores import make_store

from fhir_server import limits
from fhir_server.config import ConfigError, load_config

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = serve(make_store("sqlite", tmp_path_factory.mktemp("limits")), allow_dangling_references=True)
    yield server
    server.close()


def post_raw(live, path: str, text: str):
    return live.http.post(live.url(path), data=text.encode(), headers=FHIR_JSON)


def only_issue(response) -> dict:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    return issue


def identifiers(n: int) -> list[dict]:
    return [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": f"{i:013d}"} for i in range(n)]


def nested_extension(levels: int) -> dict:
    inner: dict = {"url": "http://relais.example/deep", "valueString": "bottom"}
    for _ in range(levels):
        inner = {"url": "http://relais.example/deep", "extension": [inner]}
    return inner


def test_fifty_thousand_identifiers_are_refused_naming_the_element(live):
    # 2 MB: held a worker 41 s before the limit
    response = live.post("Patient", {"resourceType": "Patient", "identifier": identifiers(50_000)})
    assert response.status_code == 422
    issue = only_issue(response)
    assert issue["code"] == "too-long" and issue["expression"] == ["Patient.identifier"]
    assert "50000 repetitions" in issue["diagnostics"] and "RELAIS_MAX_REPETITIONS" in issue["diagnostics"]
    assert live.get("Patient").json().get("total") == 0


def test_a_hundred_thousand_names_are_refused(live):
    names = [{"family": f"F{i}"} for i in range(100_000)]
    response = live.put("Patient/many-names", {"resourceType": "Patient", "id": "many-names", "name": names})
    assert response.status_code == 422
    assert only_issue(response)["expression"] == ["Patient.name"]
    assert live.get("Patient/many-names").status_code == 404


def test_too_many_elements_is_413_even_when_no_array_is_too_long(live):
    # 200 names of 600 given names: no array above 1,000 items, 120,000 elements in all
    names = [{"given": ["x"] * 600} for _ in range(200)]
    response = live.post("Patient", {"resourceType": "Patient", "name": names})
    assert response.status_code == 413
    issue = only_issue(response)
    assert issue["code"] == "too-long" and "more than 100000 elements" in issue["diagnostics"]
    assert issue["expression"][0].startswith("Patient.name[")


def test_nesting_too_deep_is_422_naming_the_element(live):
    response = live.post("Patient", {"resourceType": "Patient", "extension": [nested_extension(40)]})
    assert response.status_code == 422
    issue = only_issue(response)
    assert issue["code"] == "too-long" and "RELAIS_MAX_DEPTH" in issue["diagnostics"]
    assert issue["expression"][0].startswith("Patient.extension[0].extension[0].extension[0]")


def test_real_sized_resources_pass(live):
    patient = {"resourceType": "Patient", "identifier": identifiers(1000), "extension": [nested_extension(10)],
               "name": [{"given": ["x"] * 1000}]}
    assert live.post("Patient", patient).status_code == 201
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/p{i}"}} for i in range(1500)]}
    assert live.post("Group", group).status_code == 201  # Group.member is a collection: elements bound it


def test_bundle_entries_and_validate_are_limited_too(live):
    big = {"resourceType": "Patient", "identifier": identifiers(5000)}
    transaction = {"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"fullUrl": "urn:uuid:0b5c4e0e-9c0b-4b8e-9d43-5d2f2c7c0a01", "resource": big,
                              "request": {"method": "POST", "url": "Patient"}}]}
    response = live.post("", transaction)
    assert response.status_code == 422
    assert "Patient.identifier has 5000 repetitions" in response.text
    batch = {**transaction, "type": "batch"}
    entry = live.post("", batch).json()["entry"][0]["response"]
    assert entry["status"].startswith("422") and "Patient.identifier" in json.dumps(entry["outcome"])
    validated = live.post("Patient/$validate", big)
    assert validated.status_code == 422 and only_issue(validated)["expression"] == ["Patient.identifier"]
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": big}]}
    assert live.post("Patient/$validate", parameters).status_code == 422


@pytest.mark.parametrize("literal", ["1" + "0" * 400, "1e400", "-1e400", "1E+999999999"])
def test_a_number_beyond_a_double_is_422_not_500(live, literal):
    text = json.dumps(observation()).replace('"value": 72.0', f'"value": {literal}')
    assert literal in text
    response = post_raw(live, "Observation", text)
    assert response.status_code == 422, response.text
    issue = only_issue(response)
    assert issue["expression"] == ["Observation.valueQuantity.value"]
    assert "IEEE 754" in issue["diagnostics"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(live, literal):
    text = json.dumps(observation()).replace('"value": 72.0', f'"value": {literal}')
    assert post_raw(live, "Observation", text).status_code == 400


@pytest.mark.parametrize("literal", ["-0", "-0.0", "1e-400", "1.7976931348623157e308"])
def test_edge_numbers_within_a_double_are_stored(live, literal):
    text = json.dumps(observation()).replace('"value": 72.0', f'"value": {literal}')
    assert post_raw(live, "Observation", text).status_code == 201


@pytest.mark.parametrize("query", [
    "Observation?value-quantity=1e400",
    "Observation?value-quantity=-1e400",
    "Observation?value-quantity=gt1e999999999",
    "Observation?value-quantity=1e-999999999",
    "Observation?value-quantity=" + "9" * 500,
    "Observation?_count=99999999999999999999",
    "Observation?_count=-1",
    "Observation?_offset=99999999999999999999",
    "_history?_count=99999999999999999999",
    "Patient/p1/_history?_count=1e400",
    "Patient/p1/$everything?_count=99999999999999999999",
    "?_getpages=9999999999-aaaaaaaaaaaaaaaaaaaaaa&_getpagesoffset=99999999999999999999",
    "?_getpages=9999999999-aaaaaaaaaaaaaaaaaaaaaa&_getpagesoffset=1&_count=99999999999999999999",
])
def test_hostile_numbers_in_searches_are_never_a_500(live, query):
    response = live.get(query)
    assert response.status_code in (200, 400, 404, 410), (response.status_code, response.text)
    assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")


def test_the_limits_are_settings(tmp_path):
    with pytest.raises(ConfigError, match="RELAIS_MAX_REPETITIONS"):
        load_config(environ={"RELAIS_MAX_REPETITIONS": "0"})
    config = load_config(environ={"RELAIS_MAX_REPETITIONS": "3", "RELAIS_MAX_ELEMENTS": "50", "RELAIS_MAX_DEPTH": "9"})
    assert limits.from_config(config) == limits.Limits(3, 50, 9)
    small = serve(make_store("sqlite", tmp_path), max_repetitions=3)
    try:
        assert small.post("Patient", {"resourceType": "Patient", "identifier": identifiers(3)}).status_code == 201
        refused = small.post("Patient", {"resourceType": "Patient", "identifier": identifiers(4)})
        assert refused.status_code == 422 and "at most 3" in only_issue(refused)["diagnostics"]
    finally:
        small.close()
        limits.configure(limits.DEFAULT)  # the limits are per process: leave the defaults to the next test


@pytest.mark.parametrize("value", [10**400, float("inf"), float("nan"), "1e400"])
def test_index_rows_of_a_number_beyond_a_double_are_left_out_not_raised(value):
    """Extraction also runs on what is already stored ($reindex): such a value gives no row, never an OverflowError."""
    from fhir_server.search.extract import index_values

    resource = {**observation(), "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "kg"}}
    rows = index_values(resource)
    assert not [r for r in rows if r.param == "value-quantity"]
    assert [r for r in rows if r.param == "code"]
