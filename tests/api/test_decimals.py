"""FHIR decimal precision is significant: decimals come back exactly as sent, through every way in and out."""

from __future__ import annotations

import copy
import json
import pickle
import re

import pytest

from fhir_server import fhirjson

# the texts a client sends, as they must come back
DECIMALS = ["0.10", "72.400", "1e2", "-0.0", "1234567890.12345678901234567890", "6.02E+23", "0.000"]
UCUM = "http://unitsofmeasure.org"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def raw(doc: object) -> str:
    """``doc`` as JSON text, each string ``"#n:<text>"`` written as the JSON number ``<text>``."""
    return re.sub(r'"#n:([^"]+)"', r"\1", json.dumps(doc))


def texts(body: str) -> object:
    """A JSON answer with every decimal as the text it was written with (ints stay ints)."""
    return json.loads(body, parse_float=str)


def observation(value: str = "72.400") -> dict:
    components = [
        {"code": {"text": f"c{i}"}, "valueQuantity": {"value": f"#n:{text}", "unit": "kg", "system": UCUM,
                                                      "code": "kg"}}
        for i, text in enumerate(DECIMALS)
    ]
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": f"#n:{value}", "unit": "kg", "system": UCUM, "code": "kg"},
        "component": components,
        "extension": [{"url": "http://example.org/precision", "valueDecimal": "#n:0.50"}],
        "referenceRange": [{"low": {"value": 60}, "high": {"value": "#n:80.0"}}],
    }


def check(resource: dict, value: str = "72.400") -> None:
    assert resource["valueQuantity"]["value"] == value
    assert [c["valueQuantity"]["value"] for c in resource["component"]] == DECIMALS
    assert resource["extension"][0]["valueDecimal"] == "0.50"
    assert resource["referenceRange"][0]["low"]["value"] == 60  # an integer stays one
    assert resource["referenceRange"][0]["high"]["value"] == "80.0"


def post(server, path: str, doc: object, **headers):
    return server.http.post(server.url(path), data=raw(doc).encode(), headers={**FHIR_JSON, **headers})


def test_create_read_vread_update_and_history_keep_every_digit(server):
    created = post(server, "Observation", observation())
    assert created.status_code == 201, created.text
    check(texts(created.text))
    oid = created.json()["id"]
    check(texts(server.get(f"Observation/{oid}").text))
    check(texts(server.get(f"Observation/{oid}", params={"_pretty": "true"}).text))
    body = {**observation("72.40"), "id": oid}
    updated = server.http.put(server.url(f"Observation/{oid}"), data=raw(body).encode(), headers=FHIR_JSON)
    assert updated.status_code == 200, updated.text
    check(texts(updated.text), "72.40")
    check(texts(server.get(f"Observation/{oid}/_history/1").text))
    history = texts(server.get(f"Observation/{oid}/_history").text)
    assert [e["resource"]["valueQuantity"]["value"] for e in history["entry"]] == ["72.40", "72.400"]
    everything = texts(server.get("_history").text)
    assert {e["resource"]["valueQuantity"]["value"] for e in everything["entry"]} == {"72.40", "72.400"}


def test_search_answers_the_digits_sent_and_still_matches_by_value(server):
    oid = post(server, "Observation", observation()).json()["id"]
    for query in ("value-quantity=72.4", "value-quantity=72.400", "value-quantity=72.4|http://unitsofmeasure.org|kg",
                  "value-quantity=72400|http://unitsofmeasure.org|g", "component-value-quantity=100",
                  "component-value-quantity=0.1", "value-quantity=gt72.3"):
        found = server.get(f"Observation?{query}")
        assert found.status_code == 200, found.text
        entries = texts(found.text).get("entry", [])
        assert [e["resource"]["id"] for e in entries] == [oid], query
        check(entries[0]["resource"])
    assert server.get("Observation?value-quantity=72.5").json().get("entry", []) == []


def test_a_transaction_and_a_patch_keep_every_digit(server):
    # a batch where the store cannot make a transaction all-or-nothing (mongomock)
    kind = "transaction" if getattr(server.store, "supports_transactions", True) else "batch"
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": "urn:uuid:6f1c1b5e-1d2c-4c55-9f6a-2f3b9a1c0d01", "resource": observation(),
         "request": {"method": "POST", "url": "Observation"}}]}
    answer = post(server, "", bundle, Prefer="return=representation")
    assert answer.status_code == 200, answer.text
    entry = texts(answer.text)["entry"][0]
    check(entry["resource"])
    oid = entry["response"]["location"].split("/")[1]
    check(texts(server.get(f"Observation/{oid}").text))
    ops = [{"op": "replace", "path": "/valueQuantity/value", "value": "#n:72.4000"}]
    patched = server.http.patch(server.url(f"Observation/{oid}"), data=raw(ops).encode(),
                                headers={"Content-Type": "application/json-patch+json"})
    assert patched.status_code == 200, patched.text
    check(texts(patched.text), "72.4000")
    check(texts(server.get(f"Observation/{oid}").text), "72.4000")


def test_validate_accepts_what_it_is_sent():
    from fhir_server.resources import validate

    validate(fhirjson.parse_body(raw(observation())), "Observation")


def test_the_codec_reads_and_writes_texts_and_behaves_as_a_float():
    doc = fhirjson.parse_body('{"a": [0.10, 1e2, -0.0, 3, 1.5e-7], "b": {"c": 72.400}}')
    assert fhirjson.dumps(doc) == b'{"a":[0.10,1e2,-0.0,3,1.5e-7],"b":{"c":72.400}}'
    assert fhirjson.dumps(fhirjson.loads(fhirjson.dumps_text(doc))) == fhirjson.dumps(doc)
    value = doc["b"]["c"]
    assert isinstance(value, float) and value == 72.4 and value * 10 == 724.0
    for same in (copy.copy(doc), copy.deepcopy(doc), pickle.loads(pickle.dumps(doc))):
        assert fhirjson.dumps(same) == fhirjson.dumps(doc)
    pretty = fhirjson.dumps(doc, pretty=True)
    assert b'\n  "a": [\n    0.10,' in pretty and texts(pretty) == texts(fhirjson.dumps(doc))
    # what orjson alone refuses, the stdlib writes: ints past 64 bits, keys that are not strings
    assert fhirjson.dumps({"n": 10**30, 1: True}) == b'{"n":1000000000000000000000000000000,"1":true}'
    with pytest.raises(TypeError):
        fhirjson.dumps({"x": object()})
