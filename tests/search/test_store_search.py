"""Store searches agree with the in-memory matcher, on SQLite and MongoDB (mongomock), over Synthea data.

The matcher is the reference of R4 semantics (its own tests pin them); here each backend's compiled
query must return exactly the resources the matcher accepts, for a battery of searches. ``store.search``
is what the REST layer calls (on MongoDB it runs chains and _has ahead, and sorts by any parameter).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from kit.stores import close_store, make_store, put_all
from search_fixtures import synthea_linked

from fhir_server.search.matcher import matches
from fhir_server.search.parser import parse
from fhir_server.search.query import SearchQuery

PATIENT_BUSTER = "e4531916-b162-4f4b-90c2-ce37e132b8d4"

SEARCHES = [
    "Patient?name=buster",
    "Patient?name=BUST,liz",
    "Patient?family:exact=Conn",
    "Patient?family:exact=conn",
    "Patient?name:contains=eger",
    "Patient?given=liz&gender=female",
    "Patient?gender:not=male",
    "Patient?birthdate=1988",
    "Patient?birthdate=ge1986-11-28",
    "Patient?birthdate=gt1986-11-28",
    "Patient?birthdate=lt1986&birthdate=ge1984",
    "Patient?birthdate=sa1985&birthdate=eb1988-03",
    "Patient?birthdate=ne1988-03-16",
    "Patient?birthdate=ap1984-07-01",
    "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|SS|999-59-2277",
    "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|999-59-2277",
    "Patient?identifier=http://hl7.org/fhir/sid/us-ssn|999-59-2277",
    "Patient?address-city=amherst,beverly",
    "Patient?email:missing=true",
    "Patient?deceased=false",
    "Patient?_id=" + PATIENT_BUSTER,
    "Patient?_id=" + PATIENT_BUSTER + ",no-such-id",
    "Patient?_id:not=" + PATIENT_BUSTER,
    "Patient?_id=|" + PATIENT_BUSTER,
    "Patient?_id=http://example.org|" + PATIENT_BUSTER,
    "Patient?_id:missing=false",
    "Patient?_id:missing=true",
    "Patient?gender=male&_id=" + PATIENT_BUSTER,
    "Observation?subject._id=" + PATIENT_BUSTER,
    "Patient?_has:Observation:subject:_id:missing=false&_id:not=no-such-id",
    "Patient?_lastUpdated=ge2026-11-01T00:01:00Z",
    "Patient?_has:Observation:patient:code=http://loinc.org|8302-2",
    "Patient?_has:Observation:subject:value-quantity=gt80|http://unitsofmeasure.org|kg",
    "Patient?_has:Condition:subject:code=http://snomed.info/sct|444814009",
    "Observation?code=http://loinc.org|8302-2",
    "Observation?code=8302-2,29463-7",
    "Observation?code=http://loinc.org|",
    "Observation?code=|8302-2",
    "Observation?code:not=http://loinc.org|8302-2",
    "Observation?code:text=body",
    "Observation?code:text=height,weight",
    "Observation?category=vital-signs&code=http://loinc.org|29463-7",
    "Observation?status=final&category=laboratory",
    "Observation?value-quantity=gt100",
    "Observation?value-quantity=lt10|http://unitsofmeasure.org|10*3/uL",
    "Observation?value-quantity=ge180||cm",
    "Observation?value-quantity=ap80||kg",
    "Observation?value-quantity=ne185.8",
    "Observation?value-quantity=gt80000|http://unitsofmeasure.org|g",
    "Observation?value-quantity=ge1.8|http://unitsofmeasure.org|m",
    "Observation?value-quantity=lt100|http://unitsofmeasure.org|[lb_av]",
    "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt17.5|http://unitsofmeasure.org|kPa",
    "Observation?value-quantity:missing=true",
    "Observation?value-concept:missing=false",
    "Observation?date=2012",
    "Observation?date=ge2014-01-01&date=lt2016",
    "Observation?date=sa2015",
    "Observation?date=eb2013",
    "Observation?date=le2012-08-31",
    "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt130",
    "Observation?component-code-value-quantity=8462-4$lt75||mm[Hg]",
    "Observation?combo-code-value-quantity=http://loinc.org|8480-6$gt130,http://loinc.org|8302-2$gt180",
    "Observation?code-value-quantity=http://loinc.org|29463-7$gt80|http://unitsofmeasure.org|kg",
    "Observation?code-value-concept=http://loinc.org|72166-2$http://snomed.info/sct|266919005",
    "Observation?subject=Patient/" + PATIENT_BUSTER,
    "Observation?subject=" + PATIENT_BUSTER,
    "Observation?patient:Patient=" + PATIENT_BUSTER,
    "Observation?subject=https://elsewhere.example/fhir/Patient/" + PATIENT_BUSTER,
    "Observation?subject:Patient.name=liz",
    "Observation?subject.gender=male&code=http://loinc.org|29463-7",
    "Observation?subject:Patient.identifier=http://hospital.smarthealthit.org|",
    "Observation?encounter.class=AMB&code=8302-2",
    "Observation?encounter:Encounter.subject:Patient.name=clemente",
    "Observation?_tag=https://smarthealthit.org/tags|synthea-5-2019&code=72514-3",
    "Observation?_lastUpdated=lt2026-11-01T00:01:00Z",
    # _lastUpdated is answered from ``resources`` on SQLite: every prefix, precisions finer and coarser
    # than the stored seconds, :missing, and inside chains and _has.
    "Observation?_lastUpdated=2026-11-01T00:02:03Z",
    "Observation?_lastUpdated=2026-11-01T00:02:03.500Z",
    "Observation?_lastUpdated=2026-11-01T00:02",
    "Observation?_lastUpdated=ne2026-11-01T00:02",
    "Observation?_lastUpdated=gt2026-11-01T00:02:03Z&_lastUpdated=le2026-11-01T00:03",
    "Observation?_lastUpdated=sa2026-11-01T00:04:00Z",
    "Observation?_lastUpdated=eb2026-11-01T00:01:30Z",
    "Observation?_lastUpdated=ap2026-11-01T00:02:00Z",
    "Observation?_lastUpdated=ge2026-11-01T00:02:03.200Z&code=http://loinc.org|8302-2",
    "Observation?_lastUpdated:missing=false",
    "Observation?_lastUpdated:missing=true",
    "Observation?subject._lastUpdated=lt2026-11-01T00:00:10Z",
    "Patient?_has:Observation:subject:_lastUpdated=ge2026-11-01T00:04:00Z",
    "Encounter?date=2015",
    "Encounter?class=AMB&date=ge2016",
    "Encounter?participant.name=stark",
    "Encounter?participant:Practitioner.family=Stark&participant.given=anto",
    "Encounter?service-provider:missing=false",
    "Encounter?_has:Observation:encounter:category=survey",
    "Condition?onset-date=le2010",
    "Condition?code:text=hypertension",
    "Condition?abatement-date:missing=true",
    "Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|140&date=ge2015",
    "Practitioner?name=nikolaus",
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|",
    "Claim?patient=" + PATIENT_BUSTER,
    "ExplanationOfBenefit?created=ge2016",
    "Organization?name:contains=hospital",
    "Organization?name=beverly",
    "MedicationRequest?authoredon=ge2010&status=active,stopped",
    "DiagnosticReport?result.code=http://loinc.org|2093-3",
    "Procedure?date=ge2010&code:text=tubal",
]


def _query(url: str) -> SearchQuery:
    rtype, _, qs = url.partition("?")
    q = parse(rtype, parse_qsl(qs, keep_blank_values=True), max_count=1000, default_count=1000, strict=True)
    return q


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    store = make_store(request.param, tmp_path_factory.mktemp(request.param))
    put_all(store, synthea_linked())
    yield request.param, store
    close_store(store)


def _expected(query: SearchQuery) -> list[str]:
    by_key = {(r["resourceType"], r["id"]): r for r in synthea_linked()}

    def resolve(rtype: str, rid: str) -> dict | None:
        return by_key.get((rtype, rid))

    def find(q: SearchQuery):
        return [r for r in synthea_linked() if matches(q, r, resolve, find=find)]

    return sorted(r["id"] for r in find(query))


@pytest.mark.parametrize("url", SEARCHES)
def test_store_agrees_with_matcher(loaded, url: str) -> None:
    _backend, store = loaded
    query = _query(url)
    expected = _expected(query)
    got = store.search(query)
    assert sorted(got.ids) == expected
    assert got.total == len(expected)


def test_searches_are_not_all_trivial() -> None:
    sizes = [len(_expected(_query(u))) for u in SEARCHES]
    assert sum(1 for s in sizes if s == 0) < len(SEARCHES) // 4, sizes
    assert sum(1 for s in sizes if s > 0) > len(SEARCHES) // 2
