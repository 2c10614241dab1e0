"""Observation's combo-* parameters are unions of two others: searched through them, never stored.

The expected answers come from evaluating each combo parameter's own FHIRPath expression with
fhirpathpy on every Synthea Observation: independent of the rewrite under test.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import fhirpathpy
import pytest
from fhirpathpy.models import models
from kit.stores import close_store, make_store, put_all
from search_fixtures import example, synthea_linked

from fhir_server.search.extract import index_values
from fhir_server.search.matcher import matches
from fhir_server.search.parser import SearchError, parse
from fhir_server.search.query import SortKey
from fhir_server.search.registry import get_registry


def _codings(resource: dict, expression: str) -> set[tuple[str | None, str | None]]:
    found = set()
    for node in fhirpathpy.evaluate(resource, expression, model=models["r4"]):
        for coding in node.get("coding", []) if isinstance(node, dict) else []:
            found.add((coding.get("system"), coding.get("code")))
    return found


def _quantities(resource: dict, expression: str) -> list[float]:
    nodes = fhirpathpy.evaluate(resource, expression, model=models["r4"])
    return [n["value"] for n in nodes if isinstance(n, dict) and "value" in n]


COMBO_CODE = "Observation.code | Observation.component.code"
COMBO_VALUE = "Observation.value.ofType(Quantity) | Observation.component.value.ofType(Quantity)"
SYSTOLIC = ("http://loinc.org", "8480-6")
PANEL = ("http://loinc.org", "55284-4")  # Synthea's blood pressure panel


def _systolic_over(r: dict, limit: float) -> bool:
    nodes = [r, *r.get("component", [])]
    return any(
        (n.get("valueQuantity") or {}).get("value", 0) > limit and SYSTOLIC in _codings(n, "code") for n in nodes
    )


CASES = {
    "combo-code=http://loinc.org|8480-6": lambda r: SYSTOLIC in _codings(r, COMBO_CODE),
    "combo-code=http://loinc.org|55284-4": lambda r: PANEL in _codings(r, COMBO_CODE),
    "combo-code:not=http://loinc.org|8480-6": lambda r: SYSTOLIC not in _codings(r, COMBO_CODE),
    "combo-value-quantity:missing=false": lambda r: bool(_quantities(r, COMBO_VALUE)),
    "combo-value-quantity:missing=true": lambda r: not _quantities(r, COMBO_VALUE),
    "combo-value-quantity=gt100": lambda r: any(v > 100 for v in _quantities(r, COMBO_VALUE)),
    "combo-code-value-quantity=http://loinc.org|8480-6$gt120": lambda r: _systolic_over(r, 120),
}


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def observations(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    store = make_store(request.param, tmp_path_factory.mktemp("union"))
    resources = [r for r in synthea_linked() if r["resourceType"] == "Observation"]
    put_all(store, resources)
    yield store, resources
    close_store(store)


def test_combo_parameters_are_unions_with_no_rows_of_their_own():
    params = get_registry().params_for("Observation")
    assert params["combo-code"].union_of == ("code", "component-code")
    assert params["combo-code-value-quantity"].union_of == ("code-value-quantity", "component-code-value-quantity")
    assert params["code"].union_of == ()
    rows = index_values(example("Observation-blood-pressure"))
    assert rows and not [r for r in rows if r.param.startswith("combo-")]
    assert {r.param for r in rows} >= {"code", "component-code", "component-code-value-quantity"}


@pytest.mark.parametrize("query", list(CASES))
def test_combo_searches_find_what_their_expression_says(observations, query):
    store, resources = observations
    expected = {r["id"] for r in resources if CASES[query](r)}
    parsed = parse("Observation", parse_qsl(query), default_count=1000, max_count=1000, strict=True)
    assert {r["id"] for r in resources if matches(parsed, r)} == expected
    assert set(store.search(parsed).ids) == expected
    # the cases are not vacuous: some Observations match and some do not
    assert 0 < len(expected) < len(resources)


def test_sorting_on_a_combo_parameter_is_refused_or_ignored_with_a_warning():
    with pytest.raises(SearchError):
        parse("Observation", [("_sort", "combo-code")], strict=True)
    lenient = parse("Observation", [("_sort", "combo-code")], strict=False)
    assert lenient.sort == () and any("combo-code" in w for w in lenient.warnings)


def test_a_parameter_with_the_same_values_as_another_is_searched_and_sorted_through_it(tmp_path):
    assert get_registry().params_for("Practitioner")["phonetic"].union_of == ("name",)
    assert get_registry().params_for("Practitioner")["name"].union_of == ()
    practitioners = [r for r in synthea_linked() if r["resourceType"] == "Practitioner"]
    assert not [row for r in practitioners for row in index_values(r) if row.param == "phonetic"]
    store = make_store("sqlite", tmp_path)
    put_all(store, practitioners)
    family = practitioners[0]["name"][0]["family"]
    def parts(name: dict) -> list[str]:
        return [name.get("family", ""), *name.get("given", []), *name.get("prefix", []), *name.get("suffix", [])]

    expected = {r["id"] for r in practitioners
                if any(part.lower().startswith(family[:3].lower()) for n in r["name"] for part in parts(n))}
    query = parse("Practitioner", [("phonetic", family[:3])], default_count=1000, strict=True)
    assert set(store.search(query).ids) == expected and 0 < len(expected) < len(practitioners)
    assert parse("Practitioner", [("_sort", "-phonetic")], strict=True).sort == (SortKey("name", True, "string"),)
    store.close()


def test_custom_parameters_keep_their_own_rows_even_when_they_repeat_another():
    """What is stored must not depend on which other custom definitions a process has loaded."""
    import json

    from fhir_server.search.registry import SPEC_FILE, Registry

    bundle = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    registry = Registry([e["resource"] for e in bundle["entry"] if "resource" in e])
    for code in ("colour-b", "colour-a", "nickname"):
        expression = "Patient.name" if code == "nickname" else "Patient.extension.value"
        registry.add({"resourceType": "SearchParameter", "code": code, "base": ["Patient"], "type":
                      "string" if code == "nickname" else "token", "expression": expression,
                      "url": f"http://relais.example/SearchParameter/{code}"})
    params = registry.params_for("Patient")
    assert [params[c].union_of for c in ("colour-a", "colour-b", "nickname", "name")] == [(), (), (), ()]
    assert params["phonetic"].union_of == ("name",)
