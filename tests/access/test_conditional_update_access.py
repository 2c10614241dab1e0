"""A conditional update (``PUT Type?criteria``, body without id) is decided on the resource it matches.

The match is known only inside the write's transaction: without that decision a patient-scoped client
could take another patient's resource by naming it with criteria instead of its id.
"""

from __future__ import annotations

from authkit import live_fixture, observation, sqlite_store_fixture  # noqa: F401 (fixtures)

TAG = "http://relais.example/tag"


def _patients_and_their_observations(live) -> str:
    """Patients p1 and p2 with one tagged Observation each; the admin token."""
    admin = live.client_token("system/*.cruds")
    for pid in ("p1", "p2"):
        assert live.request("PUT", f"Patient/{pid}", admin, json={"resourceType": "Patient", "id": pid}).ok
        body = observation(pid, identifier=[{"system": TAG, "value": f"obs-{pid}"}])
        assert live.request("POST", "Observation", admin, json=body).status_code == 201
    return admin


def _subject_of(live, admin: str, value: str) -> str:
    found = live.request("GET", f"Observation?identifier={TAG}|{value}", admin).json()
    assert len(found["entry"]) == 1
    return found["entry"][0]["resource"]["subject"]["reference"]


def test_a_conditional_update_cannot_take_another_patients_resource(live):
    admin = _patients_and_their_observations(live)
    token = live.client_token("patient/Observation.cruds", patient="p1")
    hijack = live.request("PUT", f"Observation?identifier={TAG}|obs-p2", token, json=observation("p1"))
    assert hijack.status_code == 403, hijack.text
    assert _subject_of(live, admin, "obs-p2") == "Patient/p2"
    own = live.request("PUT", f"Observation?identifier={TAG}|obs-p1", token,
                       json=observation("p1", status="amended"))
    assert own.status_code == 200, own.text
    assert own.json()["status"] == "amended"


def test_a_conditional_update_entry_cannot_take_another_patients_resource(live):
    admin = _patients_and_their_observations(live)
    token = live.client_token("patient/Observation.cruds", patient="p1")
    put = {"method": "PUT", "url": f"Observation?identifier={TAG}|obs-p2"}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": observation("p1"), "request": put}]}
    entry = live.request("POST", "", token, json=batch).json()["entry"][0]
    assert entry["response"]["status"].startswith("403"), entry
    transaction = {**batch, "type": "transaction",
                   "entry": [{"fullUrl": "urn:uuid:7d4c1a52-1b0e-4c55-9a3e-0a2f1f4e9b01", **batch["entry"][0]}]}
    assert live.request("POST", "", token, json=transaction).status_code == 403
    transaction["entry"][0].pop("fullUrl")
    assert live.request("POST", "", token, json=transaction).status_code == 403
    assert _subject_of(live, admin, "obs-p2") == "Patient/p2"


def test_a_patch_cannot_move_a_resource_out_of_the_patients_compartment(live):
    admin = _patients_and_their_observations(live)
    token = live.client_token("patient/Observation.cruds", patient="p1")
    mine = live.request("GET", f"Observation?identifier={TAG}|obs-p1", admin).json()["entry"][0]["resource"]["id"]
    move = [{"op": "replace", "path": "/subject/reference", "value": "Patient/p2"}]
    moved = live.request("PATCH", f"Observation/{mine}", token, json=move,
                         headers={"Content-Type": "application/json-patch+json"})
    assert moved.status_code == 403, moved.text
    assert _subject_of(live, admin, "obs-p1") == "Patient/p1"
    amend = [{"op": "replace", "path": "/status", "value": "amended"}]
    own = live.request("PATCH", f"Observation/{mine}", token, json=amend,
                       headers={"Content-Type": "application/json-patch+json"})
    assert own.status_code == 200, own.text
