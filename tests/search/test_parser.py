"""Parsing search parameters into the IR: every type, modifier and prefix, escaping, result controls."""

from __future__ import annotations

import pytest
from search_fixtures import needs_ucum

from fhir_server.search.dates import date_range
from fhir_server.search.errors import SearchError
from fhir_server.search.parser import PREFIXES, number_range, parse, parse_criteria, split_escaped, unescape
from fhir_server.search.query import Predicate, SortKey
from fhir_server.search.units import CANONICAL


def one(resource_type: str, name: str, value: str) -> Predicate:
    q = parse(resource_type, [(name, value)])
    assert len(q.clauses) == 1 and len(q.clauses[0]) == 1, q.clauses
    return q.clauses[0][0]


# --- token ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "operands"),
    [
        ("http://loinc.org|8480-6", ("http://loinc.org", "8480-6")),
        ("|8480-6", ("", "8480-6")),
        ("http://loinc.org|", ("http://loinc.org", None)),
        ("8480-6", (None, "8480-6")),
        ("urn:oid:1.2.250.1.213.1.4.8|1234567890123", ("urn:oid:1.2.250.1.213.1.4.8", "1234567890123")),
    ],
)
def test_token_forms(value: str, operands: tuple) -> None:
    assert one("Observation", "code", value) == Predicate("code", "token", "eq", operands)


def test_token_modifiers() -> None:
    assert one("Observation", "code:text", "Pression Artérielle") == Predicate(
        "code", "token", "text", ("pression arterielle",)
    )
    assert one("Patient", "identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053") == Predicate(
        "identifier", "token", "of-type", ("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "446053")
    )
    assert one("Patient", "gender:missing", "true") == Predicate("gender", "token", "missing", (True,))
    with pytest.raises(SearchError):
        parse("Patient", [("identifier:of-type", "MR|446053")])
    with pytest.raises(SearchError):
        parse("Patient", [("gender:missing", "yes")])


def test_token_not_of_several_values_means_none_of_them() -> None:
    q = parse("Observation", [("status:not", "cancelled,entered-in-error")])
    assert q.clauses == (
        (Predicate("status", "token", "not", (None, "cancelled")),),
        (Predicate("status", "token", "not", (None, "entered-in-error")),),
    )


# --- string ---------------------------------------------------------------------------------------


def test_string_modifiers() -> None:
    assert one("Patient", "name", "Hélène") == Predicate("name", "string", "eq", ("helene",))
    assert one("Patient", "name:contains", "LÈN") == Predicate("name", "string", "contains", ("len",))
    assert one("Patient", "name:exact", "Hélène") == Predicate("name", "string", "exact", ("Hélène",))


def test_unknown_modifier_is_an_error() -> None:
    with pytest.raises(SearchError, match="modifier"):
        parse("Patient", [("name:sounds", "x")])
    with pytest.raises(SearchError):
        parse("Patient", [("birthdate:exact", "2020")])


# --- date -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_date_prefix(prefix: str) -> None:
    assert one("Observation", "date", f"{prefix}2026-11") == Predicate("date", "date", prefix, date_range("2026-11"))


def test_date_without_prefix_is_eq_and_bad_dates_fail() -> None:
    assert one("Patient", "birthdate", "1974-12-25").op == "eq"
    assert one("Observation", "date", "2026-11-05T10:00:00+01:00").values == date_range("2026-11-05T09:00:00Z")
    for bad in ("2026-13", "tomorrow", "gt", "ge2026/01/01"):
        with pytest.raises(SearchError):
            parse("Observation", [("date", bad)])


def test_last_updated() -> None:
    assert one("Patient", "_lastUpdated", "gt2026-01-01T00:00:00Z") == Predicate(
        "_lastUpdated", "date", "gt", date_range("2026-01-01T00:00:00Z")
    )


# --- number and quantity --------------------------------------------------------------------------


def test_number_ranges_follow_significant_digits() -> None:
    assert number_range("100") == (100.0, 99.5, 100.5)
    assert number_range("100.00") == (100.0, 99.995, 100.005)
    assert number_range("1e2") == (100.0, 50.0, 150.0)
    with pytest.raises(SearchError):
        number_range("abc")


def test_number_parameter() -> None:
    p = one("RiskAssessment", "probability", "gt0.8")
    assert p == Predicate("probability", "number", "gt", (0.8, 0.75, 0.85))


@pytest.mark.parametrize(
    ("value", "op", "operands"),
    [
        ("5.4", "eq", (5.4, 5.35, 5.45, None, None)),
        ("le5.4|http://loinc.org|mg", "le", (5.4, 5.35, 5.45, "http://loinc.org", "mg")),
        ("ap5.4||mg", "ap", (5.4, 5.35, 5.45, None, "mg")),
    ],
)
def test_quantity(value: str, op: str, operands: tuple) -> None:
    p = one("Observation", "value-quantity", value)
    assert (p.op, p.values[3:]) == (op, operands[3:])
    assert p.values[0] == pytest.approx(operands[0])
    assert p.values[1] == pytest.approx(operands[1]) and p.values[2] == pytest.approx(operands[2])


@needs_ucum
@pytest.mark.parametrize(
    ("value", "op", "operands"),
    [
        # UCUM units are searched in SI base units.
        ("le5.4|http://unitsofmeasure.org|mg", "le", (5.4e-6, 5.35e-6, 5.45e-6, CANONICAL, "kilogram")),
        ("gt180|http://unitsofmeasure.org|cm", "gt", (1.8, 1.795, 1.805, CANONICAL, "meter")),
        ("37|http://unitsofmeasure.org|Cel", "eq", (310.15, 309.65, 310.65, CANONICAL, "kelvin")),
        ("5|http://unitsofmeasure.org|{score}", "eq", (5.0, 4.5, 5.5, "http://unitsofmeasure.org", "{score}")),
    ],
)
def test_ucum_quantity(value: str, op: str, operands: tuple) -> None:
    test_quantity(value, op, operands)


@needs_ucum
def test_ucum_in_composite() -> None:
    p = one(
        "Observation", "component-code-value-quantity", "http://loinc.org|8480-6$gt18|http://unitsofmeasure.org|kPa"
    )
    assert p.values[2][3:] == (CANONICAL, "kilogram / meter / second ** 2")


def test_bad_quantity() -> None:
    for bad in ("5.4|mg", "big", "gt"):
        with pytest.raises(SearchError):
            parse("Observation", [("value-quantity", bad)])


# --- reference ------------------------------------------------------------------------------------


def test_reference_forms() -> None:
    assert one("Observation", "subject", "Patient/123").values == ("Patient", "123", None)
    assert one("Observation", "subject", "123").values == (None, "123", None)
    assert one("Observation", "subject:Patient", "123").values == ("Patient", "123", None)
    url = "https://fhir.example.org/fhir/Patient/123"
    assert one("Observation", "subject", url).values == ("Patient", "123", url)
    assert one("Observation", "subject:identifier", "urn:oid:1.2.250.1.213.1.4.8|1234") == Predicate(
        "subject", "reference", "identifier", ("urn:oid:1.2.250.1.213.1.4.8", "1234")
    )
    assert one("Observation", "subject:missing", "false") == Predicate("subject", "reference", "missing", (False,))


def test_reference_type_must_be_a_target() -> None:
    with pytest.raises(SearchError):
        parse("Observation", [("patient", "Practitioner/1")])
    with pytest.raises(SearchError):
        parse("Observation", [("patient:Practitioner", "1")])
    with pytest.raises(SearchError):
        parse("Observation", [("subject:Patient", "Group/1")])


def test_chain_with_type_modifier() -> None:
    p = one("Observation", "subject:Patient.identifier", "urn:oid:1.2.250.1.213.1.4.8|123")
    assert (p.param, p.op, p.values) == ("subject", "chain", ("Patient",))
    assert p.chain is not None and p.chain.resource_type == "Patient"
    assert p.chain.clauses == ((Predicate("identifier", "token", "eq", ("urn:oid:1.2.250.1.213.1.4.8", "123")),),)


def test_chain_without_modifier_tries_each_target_having_the_parameter() -> None:
    q = parse("Observation", [("subject.name", "dupont")])
    (clause,) = q.clauses
    targets = {p.values[0] for p in clause}
    # Observation.subject may be a Patient, Group, Device or Location; in R4 only two have "name".
    assert targets == {"Patient", "Location"}
    for p in clause:
        assert p.chain.clauses[0][0].param == "name"


def test_two_level_chain() -> None:
    p = one("Observation", "subject:Patient.organization:Organization.name", "Clinique")
    inner = p.chain.clauses[0][0]
    assert (inner.param, inner.op, inner.values) == ("organization", "chain", ("Organization",))
    assert inner.chain.clauses[0][0] == Predicate("name", "string", "eq", ("clinique",))


def test_chain_errors() -> None:
    with pytest.raises(SearchError):
        parse("Observation", [("code.name", "x")])  # not a reference
    with pytest.raises(SearchError):
        parse("Observation", [("subject:Patient.nope", "x")])


def test_has() -> None:
    p = one("Patient", "_has:Observation:patient:code", "http://loinc.org|8480-6")
    assert (p.param, p.kind, p.values) == ("_has", "has", ("Observation", "patient"))
    assert p.chain.resource_type == "Observation"
    assert p.chain.clauses == ((Predicate("code", "token", "eq", ("http://loinc.org", "8480-6")),),)
    with pytest.raises(SearchError):
        parse("Patient", [("_has:Observation:code:status", "final")])  # code is not a reference
    with pytest.raises(SearchError):
        parse("Patient", [("_has:Observation", "x")])


# --- uri and composite ----------------------------------------------------------------------------


def test_uri_modifiers() -> None:
    assert one("ValueSet", "url", "http://a/b") == Predicate("url", "uri", "eq", ("http://a/b",))
    assert one("ValueSet", "url:below", "http://a/") == Predicate("url", "uri", "below", ("http://a/",))
    assert one("ValueSet", "url:above", "http://a/b/c") == Predicate("url", "uri", "above", ("http://a/b/c",))
    assert one("Observation", "_profile", "http://x/p").kind == "uri"


def test_composite_code_value_quantity() -> None:
    p = one("Observation", "component-code-value-quantity", "http://loinc.org|8480-6$gt180")
    assert p.kind == "composite" and p.op == "gt"
    assert p.values[0] == ("http://loinc.org", "8480-6")
    assert p.values[1] == "quantity"
    assert p.values[2][0] == 180.0 and p.values[2][3:] == (None, None)
    p = one("Observation", "code-value-concept", "http://loinc.org|883-9$http://snomed.info/sct|112144000")
    assert p.values == (("http://loinc.org", "883-9"), "token", ("http://snomed.info/sct", "112144000"))
    p = one("Observation", "code-value-date", "8302-2$ge2026-01")
    assert p.op == "ge" and p.values[2] == date_range("2026-01")
    with pytest.raises(SearchError):
        parse("Observation", [("code-value-quantity", "8480-6")])


# --- OR / AND / escaping --------------------------------------------------------------------------


def test_or_by_comma_and_by_repetition() -> None:
    q = parse("Observation", [("code", "a,b"), ("code", "c")])
    assert [[p.values for p in c] for c in q.clauses] == [[(None, "a"), (None, "b")], [(None, "c")]]


def test_escaping() -> None:
    assert split_escaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert unescape(r"a\,b\$c\|d\\e") == "a,b$c|d\\e"
    q = parse("Patient", [("family", r"Dupont\,Durand,Martin")])
    assert [p.values for p in q.clauses[0]] == [("dupont,durand",), ("martin",)]
    assert one("Observation", "code", r"http://x|a\|b").values == ("http://x", "a|b")
    p = one("Observation", "code-value-string", r"http://loinc.org|1$a\$b")
    assert p.values[2] == ("a$b",)


# --- result controls ------------------------------------------------------------------------------


def test_count_defaults_and_maximum() -> None:
    assert parse("Patient", []).count == 20
    assert parse("Patient", [], default_count=50).count == 50
    q = parse("Patient", [("_count", "5000")], max_count=1000)
    assert q.count == 1000 and any("_count" in w for w in q.warnings)
    assert parse("Patient", [("_count", "0")]).count == 0
    with pytest.raises(SearchError):
        parse("Patient", [("_count", "-1")])
    with pytest.raises(SearchError):
        parse("Patient", [("_count", "ten")])


def test_sort_total_summary_elements() -> None:
    q = parse(
        "Observation",
        [
            ("_sort", "-date,code"),
            ("_sort", "_lastUpdated"),
            ("_total", "none"),
            ("_summary", "count"),
            ("_elements", "code,status"),
        ],
    )
    # Each key carries its parameter's kind: the backends order by it without the registry.
    assert q.sort == (SortKey("date", True, "date"), SortKey("code", False, "token"),
                      SortKey("_lastUpdated", False, "date"))
    assert (q.total, q.summary, q.elements) == ("none", "count", ("code", "status"))
    for name, bad in (("_total", "all"), ("_summary", "maybe")):
        with pytest.raises(SearchError):
            parse("Observation", [(name, bad)])


def test_include_and_revinclude() -> None:
    q = parse(
        "Observation",
        [
            ("_include", "Observation:subject"),
            ("_include:iterate", "Patient:general-practitioner:Practitioner"),
            ("_revinclude", "Provenance:target"),
        ],
    )
    assert q.include == ("Observation:subject", "Patient:general-practitioner:Practitioner")
    assert q.include_iterate == ("Patient:general-practitioner:Practitioner",)
    assert q.revinclude == ("Provenance:target",)
    for bad in ("Observation", "Observation:code", "Observation:subject:Medication"):
        with pytest.raises(SearchError):
            parse("Observation", [("_include", bad)])


def test_unknown_parameters_warn_or_raise() -> None:
    q = parse("Patient", [("shoe-size", "42"), ("name", "x")])
    assert len(q.clauses) == 1
    assert any("shoe-size" in w for w in q.warnings)
    with pytest.raises(SearchError, match="shoe-size"):
        parse("Patient", [("shoe-size", "42")], strict=True)
    with pytest.raises(SearchError):
        parse("Patient", [("_sort", "shoe-size")], strict=True)
    assert parse("Patient", [("_format", "json"), ("_pretty", "true")]).warnings == ()


def test_warnings_do_not_change_equality() -> None:
    assert parse("Patient", [("x", "1"), ("name", "a")]) == parse("Patient", [("name", "a")])


def test_parse_criteria() -> None:
    q = parse_criteria("Observation?code=http://loinc.org%7C8480-6&value-quantity=gt180")
    assert q.resource_type == "Observation"
    assert q.clauses[0][0].values == ("http://loinc.org", "8480-6")
    assert q.clauses[1][0].op == "gt"
    with pytest.raises(SearchError):
        parse_criteria("code=1234")
    with pytest.raises(SearchError):
        parse_criteria("Observation?nope=1")  # strict by default: a typo in a rule must not match everything
