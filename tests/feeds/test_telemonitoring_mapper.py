"""The telemonitoring mapper (mappers/telemonitoring/), with payloads alone: LOINC and UCUM, unit conversions
keeping the original value, implausible measures rejected one by one, schema errors naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fhir_server import write
from mappers import json_feed
from mappers.json_feed import Context
from mappers.telemonitoring import map_payload
from mappers.telemonitoring.measures import ORIGINAL_VALUE

from .payloads import measure, telemonitoring

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONTEXT = Context("acme", NOW)


def mapped(doc: dict):
    return map_payload(json.dumps(doc), CONTEXT)


def observations(doc: dict) -> dict[str, list[dict]]:
    """The Observations of each measure, by where they come from (measures[i])."""
    result = mapped(doc)
    assert result.problem is None, result.problem and result.problem.text
    found: dict[str, list[dict]] = {}
    for change, source in zip(result.changes, result.sources, strict=True):
        if change.resource_type == "Observation":
            found.setdefault(source, []).append(change.resource)
    return found


def loinc(observation: dict) -> list[str]:
    return [c["code"] for c in observation["code"]["coding"]]


def answer_of(doc: dict, outcomes: list[str] | None = None) -> tuple[int, dict]:
    """The answer as if every change were written with ``outcomes`` (created by default)."""
    result = mapped(doc)
    results = [write.Result(201, o, None, c.resource_type, c.id)
               for c, o in zip(result.changes, outcomes or ["created"] * len(result.changes), strict=True)]
    answering = result.answer or json_feed.problem_answer  # the identity's answer when the mapper gives none
    answer = result.written_answer(None, results) if result.problem is None else answering(result.problem)
    return answer.body["status"], answer.body["body"]


def test_the_issue_example_gives_loinc_ucum_observations_linked_to_the_patient_and_device():
    result = mapped(telemonitoring())
    assert [c.resource_type for c in result.changes] == ["Patient", "Device"] + ["Observation"] * 5
    patient, device = result.changes[0].resource, result.changes[1].resource
    assert device["serialNumber"] == "SN-88-1123" and device["manufacturer"] == "Acme"
    assert device["modelNumber"] == "BP-3" and device["patient"] == {"reference": f"Patient/{patient['id']}"}
    found = observations(telemonitoring())
    bp, pulse = found["measures[0]"]
    assert loinc(bp) == ["85354-9"]
    assert [(loinc(c)[0], c["valueQuantity"]["value"], c["valueQuantity"]["code"]) for c in bp["component"]] == [
        ("8480-6", 152, "mm[Hg]"), ("8462-4", 94, "mm[Hg]")]
    assert loinc(pulse) == ["8867-4"] and pulse["valueQuantity"] == {
        "value": 71, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    for group in found.values():
        for observation in group:
            assert observation["subject"] == {"reference": f"Patient/{patient['id']}"}
            assert observation["device"] == {"reference": f"Device/{device['id']}"}
            assert observation["effectiveDateTime"].startswith("2026-12-01T")
    assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
    assert bp["meta"]["profile"] == [
        "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/mesures-fr-observation-bp"]
    (fall,) = found["measures[3]"]
    assert fall["code"]["coding"] == [{"system": "http://snomed.info/sct", "code": "1912002", "display": "Fall"}]


@pytest.mark.parametrize(("sent", "codes", "value", "unit", "original"), [
    (measure("weight", value=160.4, unit="lb"), ["29463-7"], 72.76, "kg", (160.4, "[lb_av]")),
    (measure("weight", value=72.5, unit="kg"), ["29463-7"], 72.5, "kg", None),
    (measure("temperature", value=98.6, unit="°F"), ["8310-5"], 37.0, "Cel", (98.6, "[degF]")),
    (measure("temperature", value=38.2, unit="Cel"), ["8310-5"], 38.2, "Cel", None),
    (measure("glucose", value=3.4, unit="mmol/L"), ["2339-0"], 61.3, "mg/dL", (3.4, "mmol/L")),
    (measure("glucose", value=95, unit="mg/dL"), ["2339-0"], 95.0, "mg/dL", None),
    (measure("spo2", value=94), ["2708-6", "59408-5"], 94.0, "%", None),
    (measure("heart-rate", value=64, unit="bpm"), ["8867-4"], 64, "/min", None),
    (measure("respiratory-rate", value=18), ["9279-1"], 18, "/min", None),
    (measure("steps", value=4210), ["41950-7"], 4210, "/d", None),
])
def test_each_measure_type_is_coded_and_converted_with_the_original_value_kept(sent, codes, value, unit, original):
    (observation,) = observations(telemonitoring(sent))["measures[0]"]
    assert loinc(observation) == codes
    quantity = observation["valueQuantity"]
    assert (quantity["value"], quantity["code"], quantity["system"]) == (value, unit, "http://unitsofmeasure.org")
    if original is None:
        assert "extension" not in observation
    else:
        (kept,) = observation["extension"]
        assert kept["url"] == ORIGINAL_VALUE
        parts = {e["url"]: e for e in kept["extension"]}
        assert parts["has-been-converted"]["valueBoolean"] is True
        assert (parts["original-value"]["valueQuantity"]["value"], parts["original-value"]["valueQuantity"]["code"]) \
            == original


def test_kpa_blood_pressure_is_converted_to_mmhg_and_keeps_each_original():
    (bp,) = observations(telemonitoring(measure("blood-pressure", systolic=18.0, diastolic=11.0, unit="kPa")))[
        "measures[0]"]
    systolic, diastolic = bp["component"]
    assert (systolic["valueQuantity"]["value"], diastolic["valueQuantity"]["value"]) == (135, 83)
    original = {e["url"]: e for e in systolic["extension"][0]["extension"]}["original-value"]["valueQuantity"]
    assert (original["value"], original["code"]) == (18.0, "kPa")


@pytest.mark.parametrize(("sent", "words"), [
    (measure("blood-pressure", systolic=900, diastolic=80), "systolic: 900 mmHg is outside"),
    (measure("blood-pressure", systolic=80, diastolic=95), "systolic 80 mmHg is not above diastolic 95"),
    (measure("blood-pressure", systolic=130, diastolic=80, pulse=400), "pulse: value: 400 /min is outside"),
    (measure("weight", value=-3, unit="kg"), "value: -3 kg is outside"),
    (measure("spo2", value=120), "value: 120 % is outside"),
    (measure("temperature", value=60, unit="Cel"), "value: 60 °C is outside"),
    (measure("weight", value=70, unit="stone"), "unit: 'stone' is not a unit of weight"),
    (measure("weight", value=70), "unit: None is not a unit of weight"),
    (measure("heart-rate", value=70, time="2026-12-01T09:10:01+00:00"), "more than 10 minutes in the future"),
    (measure("heart-rate", value=70, time="2026-12-01T09:09:59+00:00"), None),
])
def test_an_implausible_measure_is_rejected_alone_with_its_reason(sent, words):
    good = measure("heart-rate", "ok", value=70)
    status, body = answer_of(telemonitoring(good, sent))
    assert status == 200
    assert body["results"][0]["status"] == "created"
    second = body["results"][1]
    if words is None:
        assert second["status"] == "created"
    else:
        assert second["status"] == "rejected" and words in second["reason"], second


def test_a_payload_whose_every_measure_is_rejected_stores_nothing_and_says_why_per_measure():
    result = mapped(telemonitoring(measure("spo2", "a", value=120), measure("spo2", "b", value=101)))
    assert result.problem is not None and result.changes == []
    status, body = answer_of(telemonitoring(measure("spo2", "a", value=120), measure("spo2", "b", value=101)))
    assert status == 422
    assert [(r["id"], r["status"]) for r in body["results"]] == [("a", "rejected"), ("b", "rejected")]


def test_a_measure_sent_again_is_unchanged_and_a_measure_id_twice_in_one_payload_is_rejected():
    status, body = answer_of(telemonitoring(), ["exists"] * 7)
    assert [r["status"] for r in body["results"]] == ["unchanged"] * 4
    status, body = answer_of(telemonitoring(measure("spo2", "a", value=97), measure("spo2", "a", value=96)))
    assert [r["status"] for r in body["results"]] == ["created", "rejected"]
    assert "given twice" in body["results"][1]["reason"]


def test_the_same_measure_of_the_same_device_has_the_same_id_and_identifier():
    first = mapped(telemonitoring()).changes[2]
    again = mapped(telemonitoring(patient={"id": "p1"})).changes[1]
    assert first.id == again.id and first.resource["identifier"] == again.resource["identifier"]
    other_device = mapped(telemonitoring(device={"id": "SN-2"})).changes[2]
    assert other_device.id != first.id


@pytest.mark.parametrize(("doc", "field"), [
    ({"device": {"id": "x"}, "measures": [measure("spo2", value=97)]}, "patient"),
    (telemonitoring(patient={"ins": "123"}), "patient.ins"),
    (telemonitoring(measure("spo2")), "measures[0].value"),
    (telemonitoring(measure("pressure", value=1)), "measures[0].type"),
    (telemonitoring(measure("spo2", value="97")), "measures[0].value"),
    (telemonitoring(measure("spo2", value=97, time="yesterday")), "measures[0].time"),
    (telemonitoring(measure("spo2", value=97, colour="red")), "measures[0].colour"),
    (telemonitoring(measure("blood-pressure", systolic=120)), "measures[0].diastolic"),
    (telemonitoring(device={"serial": "x"}), "device.id"),
    (telemonitoring(measures=[]), "measures"),
])
def test_a_payload_off_the_schema_is_refused_400_naming_the_field(doc, field):
    status, body = answer_of(doc)
    assert status == 400
    (issue,) = body["issue"]
    assert body["resourceType"] == "OperationOutcome" and issue["code"] == "invalid"
    assert issue["expression"] == [field], issue


def test_not_json_is_400():
    result = map_payload("{not json", CONTEXT)
    assert result.problem is not None and result.problem.status == 400


def test_the_readme_states_the_bounds_the_mapper_applies():
    from pathlib import Path

    from mappers.telemonitoring.measures import bounds_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for kind, plausible, units in bounds_table():
        assert f"| `{kind}` | {plausible} | {units} |" in readme, kind


@pytest.mark.parametrize("text", [
    '{"patient": {"ins": "248017512345612"}, "device": {"id": "x"}, "measures": [{"id": "a", "type": "spo2",'
    ' "value": NaN, "time": "2026-12-01T07:42:00+01:00"}]}',
    "[" * 100_000,
    '{"patient": ' * 5000,
])
def test_what_python_reads_but_json_is_not_is_400(text):
    result = map_payload(text, CONTEXT)
    assert result.problem is not None and result.problem.status == 400


def test_a_number_too_large_for_a_float_is_a_rejected_measure():
    status, body = answer_of(telemonitoring(measure("spo2", "big", value=10**400), measure("spo2", "ok", value=97)))
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["rejected", "created"]
