"""The search service takes data and returns data: no request, no application context, no Flask.

And the floors: ``fhir_server/search`` (the ground floor) imports nothing of the store, the API or the
service above it; ``fhir_server/searching`` imports no web framework and no API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kit.samples import observation

from fhir_server import searching
from fhir_server.errors import FHIRError
from fhir_server.search.errors import SearchError
from fhir_server.search.parser import parse
from fhir_server.searching.chains import readable_chains

ROOT = Path(__file__).resolve().parents[2] / "fhir_server"


def _imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.add("." * node.level + (node.module or ""))
    return found


def test_the_floors():
    ground = _imports(ROOT / "search")
    assert not {m for m in ground if m.startswith(("..store", "..api", "..searching", "..write", "flask", "auth"))}
    service = _imports(ROOT / "searching")
    assert not {m for m in service if m.startswith(("..api", "flask", "werkzeug", "auth", "..bundles"))}


@pytest.fixture(name="filled")
def filled_fixture(sqlite_server):
    for pid in ("p1", "p2"):
        assert sqlite_server.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid}).status_code == 201
    for pid in ("p1", "p1", "p2"):
        assert sqlite_server.post("Observation", observation(patient=f"Patient/{pid}")).status_code == 201
    return sqlite_server


def _mine(resource: dict) -> bool:
    subject = resource.get("subject", {}).get("reference")
    return resource.get("id") == "p1" or subject == "Patient/p1"


def test_search_without_a_request(filled):
    settings = searching.Settings("http://relais.test/fhir", default_count=20)
    decided: list[tuple] = []
    access = searching.Access(decide=lambda *args: decided.append(args), can_read=_mine,
                              sees_all=lambda rtype: False, owner="c1")  # fmt: skip
    pairs = [("_include", "Observation:subject"), ("_summary", "true")]
    bundle = searching.search(filled.store, access, "Observation", pairs, settings)
    assert decided == [("search", "Observation", None)]
    assert "total" not in bundle
    modes = [(e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"]]
    assert modes == [("match", "Observation"), ("match", "Observation"), ("include", "Patient")]
    assert all(e["fullUrl"].startswith("http://relais.test/fhir/") for e in bundle["entry"])
    everyone = searching.search(filled.store, searching.Access(), "Observation", [], settings)
    assert everyone["total"] == 3 and len(everyone["entry"]) == 3


def test_paging_without_a_request(filled):
    settings = searching.Settings("http://relais.test/fhir")
    access = searching.Access(can_read=_mine, sees_all=lambda rtype: False, owner="c1")
    first = searching.search(filled.store, access, "Observation", [("_count", "1")], settings)
    following = {link["relation"]: link["url"] for link in first["link"]}["next"]
    search_id = following.split("_getpages=")[1].split("&")[0]
    second = searching.page(filled.store, access, settings, search_id, "1", "1")
    ids = [e["resource"]["id"] for b in (first, second) for e in b["entry"]]
    assert len(set(ids)) == 2 and "total" not in second
    with pytest.raises(FHIRError) as other:  # a snapshot belongs to the client that searched
        searching.page(filled.store, searching.Access(owner="c2"), settings, search_id, "1", "1")
    assert other.value.status == 404


def test_conditional_criteria_one_parse_for_rest_and_bundles():
    query = searching.conditional_criteria("Patient", [("identifier", "urn:x|1"), ("_format", "json")])
    assert [p.param for clause in query.clauses for p in clause] == ["identifier"]
    for pairs, status in (([], 412), ([("_pretty", "true")], 412), ([("nope", "1")], 400)):
        with pytest.raises(FHIRError) as plain:
            searching.conditional_criteria("Patient", pairs)
        assert plain.value.status == status
        with pytest.raises(FHIRError) as located:
            searching.conditional_criteria("Patient", pairs, "Bundle.entry[3].request.url")
        assert located.value.status == status
        assert str(located.value).startswith("Bundle.entry[3].request.url: ")
        assert located.value.outcome()["issue"][0]["expression"] == ["Bundle.entry[3].request.url"]


def test_chains_run_ahead_through_readable_resources_only_for_restricted_callers(filled):
    query = parse("Observation", [("subject:Patient.gender:missing", "true")])
    # A caller who sees every Patient keeps the chain: the store joins it.
    assert readable_chains(filled.store, query, lambda r: True, lambda rtype: True) == query
    # Otherwise the chain becomes the ids of the Patients it may read among the matches.
    restricted = readable_chains(filled.store, query, _mine, lambda rtype: False)
    [[pred]] = restricted.clauses
    assert (pred.param, pred.op, pred.values, pred.chain) == ("subject", "in", ("Patient", ("p1",)), None)
    has = parse("Patient", [("_has:Observation:subject:status", "final")])
    [[pred]] = readable_chains(filled.store, has, lambda r: r.get("subject", {}).get("reference") == "Patient/p2",
                               lambda rtype: False).clauses  # fmt: skip
    assert (pred.param, pred.op, pred.values) == ("_id", "in", (None, ("p2",)))
    # A bound whoever asks: it cannot tell one hidden resource from another.
    with pytest.raises(SearchError, match="more than 1 resources"):
        readable_chains(filled.store, query, _mine, lambda rtype: False, max_matches=1)
