"""A body whose object repeats a key is refused with 400 naming the key, wherever the body comes in."""

from __future__ import annotations

import base64

import pytest


def _refused(response, key: str) -> None:
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert f"'{key}'" in outcome["issue"][0]["diagnostics"], outcome


def _raw(server, method: str, path: str, body: str, content_type: str = "application/fhir+json"):
    return server.http.request(method, server.url(path), data=body.encode(), headers={"Content-Type": content_type})


def test_two_resource_types_are_refused_not_the_last_one_kept(sqlite_server):
    body = '{"resourceType": "Patient", "gender": "female", "resourceType": "Observation"}'
    _refused(_raw(sqlite_server, "POST", "Observation", body), "resourceType")
    _refused(_raw(sqlite_server, "POST", "Patient", body), "resourceType")
    assert sqlite_server.get("Patient").json().get("total", 0) == 0
    assert sqlite_server.get("Observation").json().get("total", 0) == 0


@pytest.mark.parametrize("method,path,body,key", [
    ("PUT", "Patient/p1", '{"resourceType": "Patient", "id": "p1", "gender": "male", "gender": "female"}', "gender"),
    ("POST", "Patient", '{"resourceType": "Patient", "name": [{"family": "A", "family": "B"}]}', "family"),
    ("PATCH", "Patient/p1", '[{"op": "add", "path": "/gender", "value": "male", "value": "female"}]', "value"),
    ("POST", "Patient/$validate", '{"resourceType": "Patient", "active": true, "active": false}', "active"),
    ("POST", "", '{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": '
     '{"resourceType": "Patient", "birthDate": "2000-01-01", "birthDate": "1999-01-01"}, '
     '"request": {"method": "POST", "url": "Patient"}}]}', "birthDate"),
])
def test_a_repeated_key_anywhere_in_a_body_is_refused(sqlite_server, method, path, body, key):
    assert sqlite_server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"}).status_code == 201
    content_type = "application/json-patch+json" if method == "PATCH" else "application/fhir+json"
    _refused(_raw(sqlite_server, method, path, body, content_type), key)
    assert "gender" not in sqlite_server.get("Patient/p1").json()
    assert sqlite_server.get("Patient").json()["total"] == 1


def test_a_patch_entry_of_a_transaction_with_a_repeated_key_is_refused(sqlite_server):
    assert sqlite_server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"}).status_code == 201
    ops = b'[{"op": "add", "path": "/gender", "value": "male", "value": "female"}]'
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                     "data": base64.b64encode(ops).decode()},
        "request": {"method": "PATCH", "url": "Patient/p1"}}]}
    response = sqlite_server.post("", bundle)
    assert response.status_code == 400, response.text
    assert "gender" not in sqlite_server.get("Patient/p1").json()


def test_the_same_key_in_different_objects_is_fine(sqlite_server):
    body = {"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}],
            "contact": [{"name": {"family": "C"}}]}
    created = sqlite_server.post("Patient", body)
    assert created.status_code == 201, created.text
    assert [n["family"] for n in created.json()["name"]] == ["A", "B"]
