"""The chains of conditional criteria and of Subscription criteria traverse only what the caller may read.

P1's token (patient scope) may not read P3; P1 links to P3 (name Hidden3) and P1 has two Observations,
O8 and O10; P3's Observation O9 measures heart rate and has P1 as its focus.
``Observation?subject:Patient.link:Patient.name=Hidden3`` matches O8 and O10 only by looking at P3:
a conditional create, update or delete, a Bundle entry's ifNoneExist, conditional URL or reference, or
a notification that answered differently for a right guess and a wrong one would spell out P3's name.
Each answers both the same way, as a search does (test_chains_through_scopes).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from authkit import AuthServer, any_store_fixture, observation  # noqa: F401 (fixtures)

from tests.subscriptions.hookkit import Receiver, settled, subscription

HIDDEN = "subject:Patient.link:Patient.name={}"  # Observation criteria through P1's link to P3
HIDDEN_CODE = "http://loinc.org|8867-4"  # what P3's Observation O9 measures
RIGHT, WRONG = "Hidden3", "WrongGuess"


def _put_linked(live: AuthServer, admin: str) -> None:
    def put(rtype: str, rid: str, body: dict) -> None:
        response = live.request("PUT", f"{rtype}/{rid}", admin, json={"resourceType": rtype, "id": rid, **body})
        assert response.status_code in (200, 201), response.text

    put("Patient", "P3", {"name": [{"family": "Hidden3"}]})
    put("Patient", "P1", {"name": [{"family": "Mine1"}], "link": [{"other": {"reference": "Patient/P3"},
                                                                    "type": "seealso"}]})  # fmt: skip
    put("Observation", "O7", observation("P3"))
    heart_rate = {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}
    put("Observation", "O9", {**observation("P3"), "code": heart_rate, "focus": [{"reference": "Patient/P1"}]})
    for oid in ("O8", "O10"):
        put("Observation", oid, observation("P1"))


@pytest.fixture(name="linked")
def linked_fixture(any_store) -> Iterator[tuple[AuthServer, str, str]]:
    """The server, an admin token and P1's patient/*.cruds token, over P1, P3 and their Observations."""
    live = AuthServer(any_store)
    admin = live.client_token("system/*.cruds")
    _put_linked(live, admin)
    token = live.client_token("patient/*.cruds", patient="P1")
    try:
        yield live, admin, token
    finally:
        live.close()


def _criteria(guess: str) -> str:
    return HIDDEN.format(quote(guess))


def test_the_right_guess_finds_something_for_a_caller_who_reads_everything(linked):
    live, admin, token = linked
    assert live.request("GET", "Patient/P3", token).status_code == 403
    response = live.request("GET", f"Observation?{_criteria(RIGHT)}", admin)
    assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == ["O10", "O8"]
    # the admin's conditional create is decided on the whole chain, as before
    response = live.request("POST", "Observation", admin, json=observation("P1"),
                            headers={"If-None-Exist": _criteria(RIGHT)})  # fmt: skip
    assert response.status_code == 412, response.text


def _outcome(response) -> tuple[int, str | None]:
    """What a caller can tell from a write's answer: status and the type of its body."""
    body = response.json() if response.content else {}
    return response.status_code, body.get("resourceType")


@pytest.mark.parametrize("how", ["If-None-Exist", "query"])
def test_a_conditional_create_answers_a_right_guess_as_a_wrong_one(linked, how):
    live, _admin, token = linked

    def create(guess: str):
        if how == "If-None-Exist":
            return live.request("POST", "Observation", token, json=observation("P1"),
                                headers={"If-None-Exist": _criteria(guess)})  # fmt: skip
        return live.request("POST", f"Observation?{_criteria(guess)}", token, json=observation("P1"))

    right, wrong = create(RIGHT), create(WRONG)
    assert _outcome(right) == _outcome(wrong) == (201, "Observation"), right.text


def test_conditional_update_and_delete_answer_a_right_guess_as_a_wrong_one(linked):
    live, _admin, token = linked
    right = live.request("PUT", f"Observation?{_criteria(RIGHT)}", token, json=observation("P1"))
    wrong = live.request("PUT", f"Observation?{_criteria(WRONG)}", token, json=observation("P1"))
    assert _outcome(right) == _outcome(wrong) == (201, "Observation"), right.text
    right = live.request("DELETE", f"Observation?{_criteria(RIGHT)}", token)
    wrong = live.request("DELETE", f"Observation?{_criteria(WRONG)}", token)
    assert right.status_code == wrong.status_code
    for oid in ("O8", "O10"):  # the right guess deleted nothing
        assert live.request("GET", f"Observation/{oid}", token).status_code == 200


def test_conditional_criteria_through_readable_resources_still_match(linked):
    live, _admin, token = linked
    # Through P1 (readable): O8 and O10 match, so a conditional create finds several.
    response = live.request("POST", "Observation", token, json=observation("P1"),
                            headers={"If-None-Exist": "subject:Patient.name=Mine1"})  # fmt: skip
    assert response.status_code == 412, response.text
    response = live.request("POST", "Observation", token, json=observation("P1"),
                            headers={"If-None-Exist": "_id=O8&subject:Patient.name=Mine1"})  # fmt: skip
    assert response.status_code == 200 and response.json()["id"] == "O8", response.text


def _bundle_entry(live: AuthServer, token: str, kind: str, guess: str) -> tuple:
    entry = {"resource": observation("P1"),
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": _criteria(guess)}}  # fmt: skip
    response = live.request("POST", "", token, json={"resourceType": "Bundle", "type": kind, "entry": [entry]})
    if kind == "transaction" and not live.store.supports_transactions:
        pytest.skip("this store makes no transactions")
    if response.status_code != 200:
        return response.status_code, None
    return response.status_code, response.json()["entry"][0]["response"]["status"].split()[0]


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_a_bundle_if_none_exist_answers_a_right_guess_as_a_wrong_one(linked, kind):
    live, _admin, token = linked
    assert _bundle_entry(live, token, kind, RIGHT) == _bundle_entry(live, token, kind, WRONG) == (200, "201")


def test_a_transaction_conditional_update_answers_a_right_guess_as_a_wrong_one(linked):
    live, _admin, token = linked
    if not live.store.supports_transactions:
        pytest.skip("this store makes no transactions")

    def entry_status(guess: str) -> str:
        entry = {"resource": observation("P1"), "request": {"method": "PUT", "url": f"Observation?{_criteria(guess)}"}}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
        response = live.request("POST", "", token, json=bundle)
        assert response.status_code == 200, response.text
        return response.json()["entry"][0]["response"]["status"].split()[0]

    assert entry_status(RIGHT) == entry_status(WRONG) == "201"


def test_a_bundle_conditional_reference_answers_a_right_guess_as_a_wrong_one(linked):
    live, _admin, token = linked

    def entry_status(guess: str) -> str:
        # a right guess would name O8, and a wrong one nothing
        body = {**observation("P1"), "hasMember": [{"reference": f"Observation?_id=O8&{_criteria(guess)}"}]}
        batch = {"resourceType": "Bundle", "type": "batch",
                 "entry": [{"resource": body, "request": {"method": "POST", "url": "Observation"}}]}  # fmt: skip
        response = live.request("POST", "", token, json=batch)
        assert response.status_code == 200, response.text
        return response.json()["entry"][0]["response"]["status"].split()[0]

    assert entry_status(RIGHT) == entry_status(WRONG) == "412"


# ---- Subscriptions -----------------------------------------------------------------------------


@pytest.fixture(name="notifying")
def notifying_fixture(any_store) -> Iterator[tuple[AuthServer, str]]:
    live = AuthServer(any_store, scheduler=True, dispatcher_interval_s=0.05)
    admin = live.client_token("system/*.cruds")
    _put_linked(live, admin)
    try:
        yield live, admin
    finally:
        live.app.extensions["relais_scheduler"].shutdown(wait=True)
        live.close()


def _drained(live: AuthServer) -> None:
    settled(live.store)


def test_a_subscription_is_not_notified_through_what_its_owner_may_not_read(notifying):
    live, admin = notifying
    owner = live.client_token("patient/*.rs system/Subscription.cruds", patient="P1")
    receiver = Receiver()
    _drained(live)  # the set-up's writes are matched before the Subscriptions exist
    try:
        for which, criteria in [
            ("hidden-chain", f"Observation?{_criteria(RIGHT)}"),
            ("hidden-has", f"Patient?_id=P1&_has:Observation:focus:code={HIDDEN_CODE}"),
            ("chain", "Observation?subject:Patient.name=Mine1"),  # through P1: readable
            ("has", "Patient?_id=P1&_has:Observation:subject:code=http://loinc.org|29463-7"),  # O8, O10: readable
        ]:
            body = subscription(receiver.url, criteria, channel={"header": [f"X-Which: {which}"]})
            response = live.request("POST", "Subscription", owner, json=body)
            assert response.status_code == 201, response.text
        response = live.request("POST", "Observation", admin, json=observation("P1"))
        assert response.status_code == 201, response.text
        response = live.request("PUT", "Patient/P1", admin, json={**live.request("GET", "Patient/P1", admin).json(),
                                                                   "gender": "other"})  # fmt: skip
        assert response.status_code == 200, response.text
        receiver.wait_for(2)
        _drained(live)
        assert sorted(r.headers["X-Which"] for r in receiver.snapshot()) == ["chain", "has"]
    finally:
        receiver.close()
