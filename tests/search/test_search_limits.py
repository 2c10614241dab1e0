"""The largest search accepted: beyond each limit a 400 OperationOutcome, at once, never a 500 or a stuck worker.

Over real HTTP on both backends. Each refused search is also answered within a few seconds: a
timeout (the client gives up) is as bad as a 500. Just under each limit, the search answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.live import LiveServer, serve
from kit.stores import close_store, make_store

from fhir_server.config import ConfigError, load_config

QUICK_S = 20  # generous on a loaded machine; today's 400-key _sort takes over 60 s


def _put(server: LiveServer, rtype: str, rid: str, body: dict) -> None:
    response = server.put(f"{rtype}/{rid}", {"resourceType": rtype, "id": rid, **body})
    assert response.status_code in (200, 201), response.text


@pytest.fixture(name="orgs")
def orgs_fixture(server: LiveServer) -> LiveServer:
    """Organizations o1 -> o2 -> o3 -> o4 (partOf), Patient p1 managed by o1, Observation obs1 of p1."""
    for i in range(4, 0, -1):
        parent = {"partOf": {"reference": f"Organization/o{i + 1}"}} if i < 4 else {}
        _put(server, "Organization", f"o{i}", {"name": f"Org {i}", **parent})
    _put(server, "Patient", "p1", {"name": [{"family": "Durand"}], "managingOrganization": {"reference":
                                                                                             "Organization/o1"}})
    _put(server, "Observation", "obs1", {"status": "final", "code": {"text": "weight"},
                                         "subject": {"reference": "Patient/p1"}})  # fmt: skip
    return server


def _refused(server: LiveServer, path: str, words: str) -> None:
    response = server.get(path, timeout=QUICK_S)
    assert response.status_code == 400, (response.status_code, response.text[:500])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-costly"
    assert words in outcome["issue"][0]["diagnostics"], outcome


def _matches(server: LiveServer, path: str) -> list[str]:
    response = server.get(path, timeout=QUICK_S)
    assert response.status_code == 200, response.text[:500]
    return [e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


def test_a_chain_deeper_than_the_limit_is_refused(orgs):
    _refused(orgs, "Observation?subject:Patient.organization.partof.partof.name=Org", "at most 3 references")
    _refused(orgs, "Observation?subject.organization.partof.partof.name=Org", "at most 3 references")
    _refused(orgs, "Patient?_has:Observation:subject:_has:Observation:has-member:subject:Patient.organization.name=x",
             "at most 3 references")  # fmt: skip
    _refused(orgs, "Patient?_has:Observation:subject:_has:Observation:has-member:_has:Observation:has-member:status=x",
             "_has nests at most 2 levels")  # fmt: skip
    assert _matches(orgs, "Patient?_has:Observation:subject:_has:Observation:has-member:subject:Patient.name=x") == []
    # Three references: answered.
    assert _matches(orgs, "Observation?subject:Patient.organization.partof.name=Org 2") == ["obs1"]
    assert _matches(orgs, "Observation?subject:Patient.organization.partof.name=Org 3") == []


def test_more_parameters_than_the_limit_are_refused(orgs):
    _refused(orgs, "Patient?" + "&".join(f"name=n{i}" for i in range(1000)), "at most 100 parameters")
    _refused(orgs, "Patient?" + "&".join(f"name=D&family=D{i % 2}" for i in range(51)), "at most 100 parameters")
    assert _matches(orgs, "Patient?" + "&".join("name=Dur" for _ in range(99)) + "&_count=5") == ["p1"]


def test_more_values_than_the_limit_are_refused(orgs):
    _refused(orgs, "Patient?name=" + ",".join(f"n{i}" for i in range(1000)), "at most 500 values")
    _refused(orgs, "Patient?_id=" + ",".join(f"x{i}" for i in range(501)), "at most 500 values")
    _refused(orgs, "Patient?" + "&".join("name=" + ",".join(f"n{i}" for i in range(10)) for _ in range(60)),
             "at most 500 values")  # fmt: skip
    assert _matches(orgs, "Patient?_id=" + ",".join(["p1"] + [f"x{i}" for i in range(499)])) == ["p1"]
    assert _matches(orgs, "Patient?name=" + ",".join(["Dur"] + [f"n{i}" for i in range(499)])) == ["p1"]


def test_more_sort_keys_than_the_limit_are_refused(orgs):
    keys = ["name", "-birthdate", "gender", "_lastUpdated", "family", "given", "identifier", "-address", "phone",
            "email"]  # fmt: skip
    _refused(orgs, "Patient?_sort=" + ",".join(keys[i % 10] for i in range(400)), "at most 10 keys")
    _refused(orgs, "Patient?_sort=" + ",".join(keys) + "&_sort=_id", "at most 10 keys")
    assert _matches(orgs, "Patient?_sort=" + ",".join(keys)) == ["p1"]


def test_more_includes_than_the_limit_are_refused(orgs):
    _refused(orgs, "Observation?" + "&".join(["_include=Observation:subject"] * 21), "at most 20 _include")
    _refused(orgs, "Patient?_revinclude:iterate=" + ",".join(["Observation:subject"] * 1000), "at most 20 _include")
    found = orgs.get("Observation?" + "&".join(["_include:iterate=Patient:organization"] * 19)
                     + "&_include=Observation:subject", timeout=QUICK_S)  # fmt: skip
    assert found.status_code == 200, found.text
    assert sorted(e["resource"]["id"] for e in found.json()["entry"]) == ["o1", "obs1", "p1"]


@pytest.fixture(name="roomy")
def roomy_fixture(tmp_path: Path) -> Iterator[LiveServer]:
    store = make_store("sqlite", tmp_path)
    live = serve(store, search_max_chain_depth=1, search_max_parameters=3, search_max_sort_keys=1,
                 search_max_includes=1, search_max_values=2)  # fmt: skip
    yield live
    live.close()
    close_store(store)


def test_the_limits_are_settings(roomy):
    _refused(roomy, "Observation?subject:Patient.organization.name=x", "at most 1 references")
    _refused(roomy, "Patient?name=a&name=b&name=c&name=d", "at most 3 parameters")
    _refused(roomy, "Patient?name=a,b,c", "at most 2 values")
    _refused(roomy, "Patient?_sort=name,gender", "at most 1 keys")
    _refused(roomy, "Observation?_include=Observation:subject&_revinclude=Provenance:target", "at most 1 _include")
    assert _matches(roomy, "Observation?subject:Patient.name=x&_sort=date&_include=Observation:subject") == []
    # A Bundle's search entries are held to the same settings.
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?name=a,b,c"}},
        {"request": {"method": "GET", "url": "Patient?name=a,b"}}]}  # fmt: skip
    entries = roomy.post("", batch, timeout=QUICK_S).json()["entry"]
    assert [e["response"]["status"][:3] for e in entries] == ["400", "200"]
    assert "at most 2 values" in entries[0]["response"]["outcome"]["issue"][0]["diagnostics"]


def test_the_limit_settings_refuse_what_is_not_a_positive_integer():
    for name in ("RELAIS_SEARCH_MAX_CHAIN_DEPTH", "RELAIS_SEARCH_MAX_PARAMETERS", "RELAIS_SEARCH_MAX_VALUES",
                 "RELAIS_SEARCH_MAX_SORT_KEYS", "RELAIS_SEARCH_MAX_INCLUDES"):  # fmt: skip
        for bad in ("0", "-1", "many"):
            with pytest.raises(ConfigError, match=name):
                load_config(environ={name: bad})
    # Past SQLite's own bounds a setting would bring the 500s back.
    for name, bad in (("RELAIS_SEARCH_MAX_CHAIN_DEPTH", "4"), ("RELAIS_SEARCH_MAX_VALUES", "501"),
                      ("RELAIS_SEARCH_MAX_PARAMETERS", "501")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"{name}.*at most"):
            load_config(environ={name: bad})
    config = load_config(environ={"RELAIS_SEARCH_MAX_CHAIN_DEPTH": "2", "RELAIS_SEARCH_MAX_SORT_KEYS": "4"})
    assert (config.search_max_chain_depth, config.search_max_sort_keys, config.search_max_parameters) == (2, 4, 100)
