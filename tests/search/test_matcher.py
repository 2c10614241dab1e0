"""The in-memory matcher: R4 semantics of each kind, modifier and prefix over extracted rows."""

from __future__ import annotations

import pytest
from search_fixtures import example, needs_ucum

from fhir_server.search.matcher import date_matches, matches
from fhir_server.search.parser import parse
from fhir_server.search.query import IndexRow

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"lastUpdated": "2026-11-05T10:00:00Z", "tag": [{"system": "urn:relais:tags", "code": "pilot"}]},
    "identifier": [
        {
            "system": "urn:oid:1.2.250.1.213.1.4.8",
            "value": "2750512345678",
            "type": {"coding": [{"system": "http://interopsante.org/CodeSystem/v2-0203", "code": "INS-NIR"}]},
        }
    ],
    "name": [{"family": "Lefèvre", "given": ["Hélène", "Marie"]}],
    "gender": "female",
    "birthDate": "1948-03",
    "address": [{"city": "Saint-Étienne", "postalCode": "42000"}],
    "generalPractitioner": [{"reference": "Practitioner/dr1"}],
}

OBS = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
    "subject": {"reference": "Patient/p1"},
    "effectivePeriod": {"start": "2026-11-05T08:00:00+01:00", "end": "2026-11-05T08:30:00+01:00"},
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "valueQuantity": {"value": 185, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
            "valueQuantity": {"value": 95, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        },
    ],
}

WEIGHT = {
    "resourceType": "Observation",
    "id": "w1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Poids"},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-05",
    "valueQuantity": {"value": 72.4, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
}


def m(resource: dict, *params: tuple[str, str], **kw) -> bool:
    return matches(parse(resource["resourceType"], list(params)), resource, **kw)


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("name", "helene", True),
        ("name", "HEL", True),
        ("name", "lefevre", True),
        ("name", "ene", False),
        ("name:contains", "ÈNE", True),
        ("name:exact", "Hélène", True),
        ("name:exact", "helene", False),
        ("family", "Lefèvre", True),
        ("address-city", "saint-etienne", True),
        ("address", "42", True),
        ("given", "marie,paul", True),
        ("given", "paul,jean", False),
    ],
)
def test_strings(param: str, value: str, expected: bool) -> None:
    assert m(PATIENT, (param, value)) is expected


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("identifier", "urn:oid:1.2.250.1.213.1.4.8|2750512345678", True),
        ("identifier", "2750512345678", True),
        ("identifier", "urn:oid:1.2.250.1.213.1.4.8|", True),
        ("identifier", "|2750512345678", False),
        ("identifier", "urn:oid:1.2.250.1.213.1.4.9|2750512345678", False),
        ("identifier:of-type", "http://interopsante.org/CodeSystem/v2-0203|INS-NIR|2750512345678", True),
        ("identifier:of-type", "http://interopsante.org/CodeSystem/v2-0203|INS-NIA|2750512345678", False),
        ("gender", "female", True),
        ("gender:not", "male", True),
        ("gender:not", "female", False),
        ("gender:missing", "false", True),
        ("gender:missing", "true", False),
        ("_id", "p1", True),
        ("_id", "p2,p1", True),
        ("_id", "p2", False),
        ("_tag", "urn:relais:tags|pilot", True),
        ("_tag", "urn:relais:tags|other", False),
        ("email:missing", "true", True),
    ],
)
def test_tokens(param: str, value: str, expected: bool) -> None:
    assert m(PATIENT, (param, value)) is expected


def test_whole_name() -> None:
    assert m(PATIENT, ("name", "helene marie lef"))
    assert m(PATIENT, ("name", "Hélène Marie Lefèvre"))
    assert not m(PATIENT, ("name", "lefevre helene"))


def test_precomputed_rows_are_used() -> None:
    q = parse("Patient", [("gender", "male")])
    assert not matches(q, PATIENT)
    # Rows handed in stand for the resource: proof they are read instead of re-extracted.
    assert matches(q, PATIENT, rows=[IndexRow("gender", "token", None, "male")])


def test_token_text_and_not_none_of() -> None:
    assert m(WEIGHT, ("code:text", "poids"))
    assert m(OBS, ("code:text", "pressure"))  # a word of the display
    assert not m(OBS, ("code:text", "ressure"))
    assert m(OBS, ("status:not", "cancelled,entered-in-error"))
    assert not m(OBS, ("status:not", "cancelled,final"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1948", True),
        ("1948-03", True),
        ("1948-03-10", False),  # the birth month is wider than the day asked
        ("ne1948-03", False),
        ("gt1948-02", True),
        ("gt1948-03", False),
        ("lt1948-04", True),
        ("lt1948-03-01", False),
        ("ge1948-03", True),
        ("le1948-03", True),
        ("sa1947", True),
        ("sa1948-02-15", True),
        ("sa1948-03-15", False),
        ("eb1949", True),
        ("eb1948-03-31", False),
        ("ap1948-03-05", True),
        ("ap1990", False),
    ],
)
def test_dates_on_partial_birthdate(value: str, expected: bool) -> None:
    assert m(PATIENT, ("birthdate", value)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-05", True),
        ("2026-11", True),
        ("2026-11-05T07:00:00Z", False),
        ("ge2026-11-05T07:10:00Z", True),
        ("gt2026-11-05T07:31:00Z", False),
        ("lt2026-11-05T07:10:00Z", True),
        ("sa2026-11-04", True),
        ("eb2026-11-06", True),
        ("eb2026-11-05T07:15:00Z", False),
        ("ne2026-10", True),
    ],
)
def test_dates_on_period(value: str, expected: bool) -> None:
    assert m(OBS, ("date", value)) is expected


def test_date_prefix_table() -> None:
    day = (100.0, 199.999)
    assert date_matches("eq", *day, 120, 130) and not date_matches("eq", *day, 90, 130)
    assert date_matches("gt", *day, 150, 250) and not date_matches("gt", *day, 150, 199)
    assert date_matches("sa", *day, 200, 300) and not date_matches("sa", *day, 150, 300)
    assert date_matches("eb", *day, 0, 99) and not date_matches("eb", *day, 0, 100)


def test_last_updated() -> None:
    assert m(PATIENT, ("_lastUpdated", "ge2026-11-05"))
    assert not m(PATIENT, ("_lastUpdated", "gt2026-11-05"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("72.4", True),
        ("72", True),  # 72 covers [71.5, 72.5)
        ("72.0", False),
        ("gt70", True),
        ("lt70", False),
        ("ge72.4", True),
        ("le72.3", False),
        ("ne72.4", False),
        ("ap70", True),
        ("ap60", False),
        ("72.4|http://unitsofmeasure.org|kg", True),
        ("72.4||kg", True),
        ("72.4|http://unitsofmeasure.org|g", False),
        ("0.0724", False),  # an SI row never answers a search without unit
        ("72.4|http://other|kg", False),
    ],
)
def test_quantities(value: str, expected: bool) -> None:
    assert m(WEIGHT, ("value-quantity", value)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://loinc.org|8480-6$gt180", True),
        ("http://loinc.org|8480-6$gt190", False),
        ("http://loinc.org|8462-4$gt180", False),  # the 185 belongs to the systolic component only
        ("8462-4$lt100", True),
        ("http://loinc.org|8480-6$185|http://unitsofmeasure.org|mm[Hg]", True),
        ("http://loinc.org|8480-6$185||mmHg", False),  # unit as written is not the code here
        ("http://loinc.org|8480-6$185||mm[Hg]", True),
    ],
)
def test_component_code_value_quantity(value: str, expected: bool) -> None:
    assert m(OBS, ("component-code-value-quantity", value)) is expected


@needs_ucum
@pytest.mark.parametrize(
    ("resource", "param", "value", "expected"),
    [
        (WEIGHT, "value-quantity", "72400|http://unitsofmeasure.org|g", True),  # grams find kilograms
        (WEIGHT, "value-quantity", "gt150|http://unitsofmeasure.org|[lb_av]", True),
        (WEIGHT, "value-quantity", "gt170|http://unitsofmeasure.org|[lb_av]", False),
        (WEIGHT, "value-quantity", "72.4|http://unitsofmeasure.org|m", False),  # not a mass
        (OBS, "component-code-value-quantity", "http://loinc.org|8480-6$gt24|http://unitsofmeasure.org|kPa", True),
        (OBS, "component-code-value-quantity", "http://loinc.org|8480-6$gt25|http://unitsofmeasure.org|kPa", False),
    ],
)
def test_ucum_conversions(resource: dict, param: str, value: str, expected: bool) -> None:
    assert m(resource, (param, value)) is expected


def test_code_value_quantity_on_the_observation_itself() -> None:
    assert m(WEIGHT, ("code-value-quantity", "http://loinc.org|29463-7$ge70"))
    assert not m(WEIGHT, ("code-value-quantity", "http://loinc.org|29463-7$ge80"))
    assert not m(OBS, ("code-value-quantity", "http://loinc.org|8480-6$gt180"))


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("subject", "Patient/p1", True),
        ("subject", "p1", True),
        ("subject:Patient", "p1", True),
        ("subject:Group", "p1", False),
        ("subject", "Patient/p2", False),
        ("patient", "p1", True),
        ("subject", "https://relais.example/fhir/Patient/p1", True),
        ("subject:missing", "false", True),
        ("encounter:missing", "true", True),
    ],
)
def test_references(param: str, value: str, expected: bool) -> None:
    assert m(WEIGHT, (param, value)) is expected


def test_reference_identifier() -> None:
    obs = dict(WEIGHT, performer=[{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810000000001"}}])
    assert m(obs, ("performer:identifier", "urn:oid:1.2.250.1.71.4.2.1|810000000001"))
    assert not m(obs, ("performer:identifier", "urn:oid:1.2.250.1.71.4.2.1|8"))
    assert not m(obs, ("performer", "810000000001"))  # an identifier is not a reference id


def test_chain_follows_resolve() -> None:
    store = {("Patient", "p1"): PATIENT}

    def resolve(rtype: str, rid: str) -> dict | None:
        return store.get((rtype, rid))

    ins = "urn:oid:1.2.250.1.213.1.4.8|2750512345678"
    assert m(WEIGHT, ("subject:Patient.identifier", ins), resolve=resolve)
    assert m(WEIGHT, ("subject.name", "helene"), resolve=resolve)
    assert not m(WEIGHT, ("subject.name", "paul"), resolve=resolve)
    assert not m(WEIGHT, ("subject:Patient.identifier", ins))  # no resolver: a chain matches nothing


def test_has_uses_find() -> None:
    observations = [WEIGHT, OBS]

    def find(query):
        return [o for o in observations if matches(query, o)]

    assert m(PATIENT, ("_has:Observation:patient:code", "http://loinc.org|29463-7"), find=find)
    assert not m(PATIENT, ("_has:Observation:patient:code", "http://loinc.org|1234-5"), find=find)
    other = dict(PATIENT, id="p2")
    assert not m(other, ("_has:Observation:patient:code", "http://loinc.org|29463-7"), find=find)


def test_uri() -> None:
    vs = {"resourceType": "ValueSet", "id": "v", "status": "active", "url": "http://relais.example/fhir/ValueSet/x"}
    assert m(vs, ("url", "http://relais.example/fhir/ValueSet/x"))
    assert not m(vs, ("url", "http://relais.example/fhir/ValueSet"))
    assert m(vs, ("url:below", "http://relais.example/fhir/"))
    assert m(vs, ("url:above", "http://relais.example/fhir/ValueSet/x/y"))
    assert not m(vs, ("url:above", "http://other/"))


def test_and_of_or() -> None:
    assert m(WEIGHT, ("code", "29463-7,1234-5"), ("date", "2026"))
    assert not m(WEIGHT, ("code", "29463-7"), ("date", "2025"))
    assert m(WEIGHT)  # no criteria: everything of the type
    assert not matches(parse("Patient", []), WEIGHT)


def test_matches_shared_examples() -> None:
    bp = example("Observation-blood-pressure")
    assert m(bp, ("component-code-value-quantity", "http://loinc.org|8480-6$107"))
    assert m(bp, ("_profile", "http://hl7.org/fhir/StructureDefinition/vitalsigns"))
    assert m(bp, ("date", "2012-09-17"))
    assert not m(bp, ("date", "2012-09-18"))
