"""Extraction of index rows: every shared R4 example, spot checks per kind, fast walker = fhirpathpy."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
from search_fixtures import all_examples, example, needs_ucum, synthea_resources

from fhir_server.search.dates import MAX_TS, date_range
from fhir_server.search.extract import extractors, index_values, index_values_reference, warm_up
from fhir_server.search.query import IndexRow


def rows_of(resource: dict, param: str, kind: str | None = None) -> list[IndexRow]:
    return [r for r in index_values(resource) if r.param == param and (kind is None or r.kind == kind)]


@pytest.mark.parametrize("path", all_examples(), ids=lambda p: p.stem)
def test_fast_walker_gives_fhirpathpy_rows(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    fast = index_values(resource)
    assert fast, "every example has at least its _id"
    assert sorted(map(repr, fast)) == sorted(map(repr, index_values_reference(resource)))


def test_examples_are_covered() -> None:
    assert len(all_examples()) >= 250


def test_most_expressions_take_the_fast_path() -> None:
    fast = total = 0
    for rtype in ("Observation", "Patient", "Encounter", "Condition", "MedicationRequest"):
        for ex in extractors(rtype):
            fast += ex.path.fast_parts
            total += len(ex.path.parts)
    assert fast / total > 0.95


def test_patient_identifier_name_and_birthdate() -> None:
    p = example("Patient-example")
    assert IndexRow("identifier", "token", "urn:oid:1.2.36.146.595.217.0.1", "12345") in rows_of(p, "identifier")
    of_type = rows_of(p, "identifier", "of-type")
    assert of_type == [
        IndexRow(
            "identifier", "of-type", "urn:oid:1.2.36.146.595.217.0.1", "12345",
            "http://terminology.hl7.org/CodeSystem/v2-0203|MR",
        )
    ]  # fmt: skip
    assert {r.code for r in rows_of(p, "family")} == {"chalmers", "windsor"}
    assert {r.text for r in rows_of(p, "given")} == {"Peter", "James", "Jim"}
    (birth,) = rows_of(p, "birthdate")
    assert (birth.low, birth.high) == date_range("1974-12-25")
    assert IndexRow("gender", "token", None, "male") in rows_of(p, "gender")
    assert IndexRow("organization", "reference", "Organization", "1", "Organization/1") in rows_of(p, "organization")


def test_accents_are_folded_but_kept_as_written() -> None:
    p = {"resourceType": "Patient", "id": "h", "name": [{"family": "Lefèvre-Œuvray", "given": ["Hélène"]}]}
    given = rows_of(p, "given")
    assert given == [IndexRow("given", "string", None, "helene", "Hélène")]
    assert rows_of(p, "family")[0].code == "lefevre-oeuvray"


def test_observation_code_value_and_date() -> None:
    o = example("Observation-example")
    codes = {(r.system, r.code) for r in rows_of(o, "code")}
    assert ("http://loinc.org", "29463-7") in codes
    assert ("http://snomed.info/sct", "27113001") in codes
    (q,) = rows_of(o, "value-quantity", "quantity")
    assert (q.low, q.high, q.system, q.code, q.text) == (185.0, 185.0, "http://unitsofmeasure.org", "[lb_av]", "lbs")
    (d,) = rows_of(o, "date")
    assert (d.low, d.high) == date_range("2016-03-28")
    assert IndexRow("patient", "reference", "Patient", "example", "Patient/example") in rows_of(o, "patient")


def test_components_make_composite_rows() -> None:
    o = example("Observation-blood-pressure")
    rows = rows_of(o, "component-code-value-quantity", "composite")
    by_code = {r.code: r for r in rows}
    assert by_code["8480-6"].low == 107 and by_code["8480-6"].text == "http://unitsofmeasure.org|mm[Hg]"
    assert by_code["8462-4"].low == 60
    assert {(r.system, r.code) for r in rows if r.low == 107} == {
        ("http://loinc.org", "8480-6"),
        ("http://snomed.info/sct", "271649006"),
        ("http://acme.org/devices/clinical-codes", "bp-s"),
    }
    # The panel's own code has no value, so code-value-quantity has nothing.
    assert rows_of(o, "code-value-quantity") == []
    assert {r.low for r in rows_of(o, "component-value-quantity", "quantity")} == {107.0, 60.0}


@needs_ucum
def test_ucum_quantities_get_an_si_row() -> None:
    (si,) = rows_of(example("Observation-example"), "value-quantity", "ucum")  # 185 [lb_av]
    assert (si.system, si.code) == ("urn:relais:ucum-canonical", "kilogram")
    assert si.low == pytest.approx(185 * 0.45359237)
    bp = example("Observation-blood-pressure")
    si = {r.code: r for r in rows_of(bp, "component-code-value-quantity", "composite-ucum")}
    assert si["8480-6"].low == pytest.approx(107 * 133.322387415)
    assert si["8480-6"].text == "urn:relais:ucum-canonical|kilogram / meter / second ** 2"


def test_period_with_open_end() -> None:
    o = example("Observation-f001")
    (d,) = rows_of(o, "date")
    assert d.low == date_range("2013-04-02T09:30:10+01:00")[0]
    assert d.high == MAX_TS


def test_meta_parameters() -> None:
    glossy = example("Patient-glossy")
    (lu,) = rows_of(glossy, "_lastUpdated")
    assert lu.low == date_range("2014-11-13T00:41:00Z")[0]
    bp = example("Observation-blood-pressure")
    assert rows_of(bp, "_profile") == [
        IndexRow("_profile", "uri", code="http://hl7.org/fhir/StructureDefinition/vitalsigns")
    ]
    cond = example("Condition-f202")
    assert rows_of(cond, "_security")[0][2:4] == ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "TBOO")
    tagged = {
        "resourceType": "Observation",
        "id": "t",
        "status": "final",
        "code": {"text": "x"},
        "meta": {"tag": [{"system": "urn:relais:tags", "code": "triage"}], "source": "urn:relais:feed:telemonitoring"},
    }
    assert rows_of(tagged, "_tag") == [IndexRow("_tag", "token", "urn:relais:tags", "triage")]
    assert rows_of(tagged, "_source") == [IndexRow("_source", "uri", code="urn:relais:feed:telemonitoring")]
    assert rows_of(tagged, "_id") == [IndexRow("_id", "token", None, "t")]


def test_token_text_rows() -> None:
    cond = example("Condition-example")
    rows = rows_of(cond, "code")
    assert IndexRow("code", "token", "http://snomed.info/sct", "39065001", "burn of ear") in rows
    # CodeableConcept.text differs from the display: it gets a row of its own for :text.
    assert IndexRow("code", "token", None, None, "burnt ear") in rows


def test_reference_identifier_and_resolve_filter() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Group/g1"},
        "performer": [{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000000001"}}],
    }
    assert rows_of(obs, "patient") == []  # where(resolve() is Patient): a Group is not a Patient
    assert rows_of(obs, "subject") == [IndexRow("subject", "reference", "Group", "g1", "Group/g1")]
    assert rows_of(obs, "performer") == [
        IndexRow("performer", "identifier", "urn:oid:1.2.250.1.71.4.2.1", "810000000001")
    ]


def test_absolute_and_versioned_references() -> None:
    obs = {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "https://other.example/fhir/Patient/p9/_history/3"},
    }
    (row,) = rows_of(obs, "subject")
    assert (row.system, row.code, row.text) == ("Patient", "p9", "https://other.example/fhir/Patient/p9/_history/3")


def test_telecom_email_where_filter() -> None:
    p = {
        "resourceType": "Patient",
        "id": "p",
        "telecom": [{"system": "phone", "value": "+33 1 23 45 67 89"}, {"system": "email", "value": "a@b.fr"}],
    }
    assert rows_of(p, "email") == [IndexRow("email", "token", "email", "a@b.fr")]
    assert rows_of(p, "phone") == [IndexRow("phone", "token", "phone", "+33 1 23 45 67 89")]
    assert len(rows_of(p, "telecom")) == 2


def test_extraction_does_not_modify_the_resource() -> None:
    o = example("Observation-blood-pressure")
    before = copy.deepcopy(o)
    index_values(o)
    index_values_reference(o)
    assert o == before


def test_throughput_on_simple_observations() -> None:
    observations = [r for r in synthea_resources() if r["resourceType"] == "Observation"]
    assert len(observations) > 50
    index_values(observations[0])  # compile once
    rounds, rows = 5, 0
    start = time.thread_time()  # this thread's CPU: other threads and a busy machine do not count
    for _ in range(rounds):
        for o in observations:
            rows += len(index_values(o))
    elapsed = time.thread_time() - start
    per_second = rows / elapsed
    print(f"extraction: {rounds * len(observations) / elapsed:.0f} Observations/s, {per_second:.0f} rows/s")
    # A deliberately loose floor: catches a fall back to fhirpathpy (about 10x slower), not noise.
    assert per_second > 20_000


def test_warm_up_prepares_extraction() -> None:
    warm_up(["Observation", "Patient"])
    start = time.thread_time()
    rows = index_values(example("Observation-example"))
    assert rows
    assert time.thread_time() - start < 0.1  # nothing left to compile or load
