"""Chains and ``_has`` traverse only what the caller may read: no oracle through a patient scope.

P1's token may not read P3, nor P3's Observations. P1 links to P3, and P1's Observations point at
P3 and at P3's Observation (hasMember, focus). A chain or ``_has`` that looked at P3's data would
answer differently for a right guess and a wrong one: it must answer both the same way, by
searching, in REST and in a batch entry, on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from authkit import AuthServer, any_store_fixture, observation  # noqa: F401 (fixtures)

LOINC = "http://loinc.org"
HIDDEN_CODE = f"{LOINC}|8867-4"  # what P3's own Observation O9 measures


@pytest.fixture(name="linked")
def linked_fixture(any_store) -> Iterator[tuple[AuthServer, str, str]]:
    """The server, an admin token and P1's patient/*.rs token, over P1, P3 and their Observations."""
    live = AuthServer(any_store)
    admin = live.client_token("system/*.cruds")

    def put(rtype: str, rid: str, body: dict) -> None:
        response = live.request("PUT", f"{rtype}/{rid}", admin, json={"resourceType": rtype, "id": rid, **body})
        assert response.status_code in (200, 201), response.text

    put("Patient", "P3", {"name": [{"family": "Hidden3"}], "gender": "female"})
    put("Patient", "P1", {"name": [{"family": "Mine1"}], "link": [{"other": {"reference": "Patient/P3"},
                                                                    "type": "seealso"}]})  # fmt: skip
    put("Observation", "O7", observation("P3"))
    put("Observation", "O9", {**observation("P3"), "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                              "focus": [{"reference": "Patient/P1"}]})  # fmt: skip
    for oid in ("O8", "O10"):
        put("Observation", oid, {**observation("P1"), "hasMember": [{"reference": "Observation/O7"}],
                                 "focus": [{"reference": "Patient/P3"}]})  # fmt: skip
    token = live.client_token("patient/*.rs", patient="P1")
    try:
        yield live, admin, token
    finally:
        live.close()


def _answer(response) -> tuple:
    """What a caller can tell from a search answer: status, matches, total, link relations, warnings."""
    assert response.status_code == 200, response.text
    bundle = response.json()
    entries = bundle.get("entry", [])
    matches = sorted(e["resource"]["id"] for e in entries if e["search"]["mode"] == "match")
    included = sorted(e["resource"]["id"] for e in entries if e["search"]["mode"] == "include")
    relations = sorted(link["relation"] for link in bundle.get("link", []))
    return matches, included, bundle.get("total"), relations


# (search, right guess, wrong guess): each right guess is true of P3's data.
ORACLES = [
    ("Patient?_id=P1&link:Patient.name={}", "Hidden3", "WrongGuess"),
    ("Patient?_id=P1&link:Patient.name={}", "H", "W"),
    ("Patient?_id=P1&link:Patient.gender={}", "female", "male"),
    ("Observation?_id=O8&has-member:Observation.subject={}", "Patient/P3", "Patient/P2"),
    ("Observation?_id=O8&focus:Patient.name={}", "Hidden3", "WrongGuess"),
    ("Observation?focus:Patient.name={}&_count=1", "Hidden3", "WrongGuess"),
    ("Observation?has-member:Observation.subject:Patient.name={}", "Hidden3", "WrongGuess"),
    ("Patient?_id=P1&_has:Observation:focus:code={}", HIDDEN_CODE, f"{LOINC}|0000-0"),
    ("Patient?_has:Observation:focus:code={}&_count=1", HIDDEN_CODE, f"{LOINC}|0000-0"),
]


@pytest.mark.parametrize(("search", "right", "wrong"), ORACLES)
def test_a_chain_through_unreadable_resources_answers_a_right_guess_as_a_wrong_one(linked, search, right, wrong):
    live, admin, token = linked
    assert live.request("GET", "Patient/P3", token).status_code == 403
    assert live.request("GET", "Observation/O7", token).status_code == 403
    assert live.request("GET", "Observation/O9", token).status_code == 403
    right_url, wrong_url = search.format(quote(right, safe="/|")), search.format(quote(wrong, safe="/|"))
    # The right guess is right: a caller who may read everything finds something with it.
    assert _answer(live.request("GET", right_url, admin))[0]
    assert not _answer(live.request("GET", wrong_url, admin))[0]
    assert _answer(live.request("GET", right_url, token)) == _answer(live.request("GET", wrong_url, token))
    assert _answer(live.request("GET", right_url, token))[0] == []


def test_a_batch_entry_traverses_only_what_the_caller_may_read(linked):
    live, _admin, token = linked

    def entry_answer(guess: str) -> tuple:
        url = f"Patient?_id=P1&link:Patient.name={guess}"
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": url}}]}
        response = live.request("POST", "", token, json=batch)
        assert response.status_code == 200, response.text
        entry = response.json()["entry"][0]
        assert entry["response"]["status"].startswith("200")
        found = entry["resource"].get("entry", [])
        return sorted(e["resource"]["id"] for e in found if e["search"]["mode"] == "match")

    assert entry_answer("Hidden3") == entry_answer("WrongGuess") == []


def test_chains_through_what_the_caller_may_read_still_answer(linked):
    live, admin, token = linked
    # Through P1 (readable): O8 and O10 are P1's.
    found = _answer(live.request("GET", "Observation?subject:Patient.name=Mine1", token))
    assert found[0] == ["O10", "O8"]
    assert _answer(live.request("GET", "Observation?subject:Patient.name=Nobody", token))[0] == []
    # P1's own Observations point at P1 through the chain, whatever their type's other references.
    found = _answer(live.request("GET", "Patient?_has:Observation:subject:code=http://loinc.org|29463-7", token))
    assert found[0] == ["P1"]
    # A caller who reads everything keeps the whole chain.
    assert _answer(live.request("GET", "Patient?_id=P1&link:Patient.name=Hidden3", admin))[0] == ["P1"]
    found = _answer(live.request("GET", f"Patient?_has:Observation:focus:code={HIDDEN_CODE}", admin))
    assert found[0] == ["P1"]
