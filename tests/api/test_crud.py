"""FHIR R4 REST interactions against the served app, on every store backend."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from kit.samples import observation

OID_INS = "urn:oid:1.2.250.1.213.1.4.8"


def patient(ins: str = "1850275123456", family: str = "Martin") -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": OID_INS, "value": ins}],
            "name": [{"family": family, "given": ["Hélène"]}], "gender": "female", "birthDate": "1950-03-01"}


def test_create_answers_201_with_location_etag_and_last_modified(server):
    assert server.put("Patient/p1", {**patient(), "id": "p1"}).status_code == 201
    r = server.post("Observation", observation())
    assert r.status_code == 201
    body = r.json()
    assert body["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"] == server.url(f"Observation/{body['id']}/_history/1")
    assert r.headers["Content-Type"].startswith("application/fhir+json")
    assert parsedate_to_datetime(r.headers["Last-Modified"]).year >= 2026


def test_create_ignores_a_client_id_in_the_body(server):
    r = server.post("Patient", {**patient(), "id": "chosen-by-client"})
    assert r.status_code == 201 and r.json()["id"] != "chosen-by-client"


def test_read_vread_and_versions(server):
    created = server.post("Patient", patient()).json()
    pid = created["id"]
    updated = {**created, "gender": "other"}
    r = server.put(f"Patient/{pid}", updated)
    assert r.status_code == 200 and r.headers["ETag"] == 'W/"2"'
    assert server.get(f"Patient/{pid}").json()["gender"] == "other"
    v1 = server.get(f"Patient/{pid}/_history/1")
    assert v1.status_code == 200 and v1.json()["gender"] == "female" and v1.headers["ETag"] == 'W/"1"'
    assert server.get(f"Patient/{pid}/_history/3").status_code == 404
    assert server.get(f"Patient/{pid}/_history/x").status_code == 400
    assert server.get("Patient/does-not-exist").status_code == 404


def test_update_as_create_with_a_client_id(server):
    r = server.put("Patient/ins-1850275123456", {**patient(), "id": "ins-1850275123456"})
    assert r.status_code == 201
    assert r.headers["Location"].endswith("/Patient/ins-1850275123456/_history/1")
    assert server.get("Patient/ins-1850275123456").status_code == 200


def test_update_body_id_must_match_the_url(server):
    created = server.post("Patient", patient()).json()
    r = server.put(f"Patient/{created['id']}", {**created, "id": "other"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    no_id = {k: v for k, v in created.items() if k != "id"}
    assert server.put(f"Patient/{created['id']}", no_id).status_code == 400


def test_if_match_gives_412_on_a_stale_version(server):
    created = server.post("Patient", patient()).json()
    pid = created["id"]
    assert server.put(f"Patient/{pid}", created, headers={"If-Match": 'W/"1"'}).status_code == 200
    stale = server.put(f"Patient/{pid}", created, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["issue"][0]["code"] == "conflict"
    assert server.put(f"Patient/{pid}", created, headers={"If-Match": "garbage"}).status_code == 400
    assert server.get(f"Patient/{pid}").json()["meta"]["versionId"] == "2"


def test_delete_is_versioned_read_gives_410_history_keeps_it(server):
    pid = server.post("Patient", patient()).json()["id"]
    r = server.delete(f"Patient/{pid}")
    assert r.status_code == 204 and r.headers["ETag"] == 'W/"2"'
    gone = server.get(f"Patient/{pid}")
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"
    hist = server.get(f"Patient/{pid}/_history").json()
    assert hist["type"] == "history" and hist["total"] == 2
    assert hist["entry"][0]["request"]["method"] == "DELETE" and "resource" not in hist["entry"][0]
    assert hist["entry"][1]["resource"]["id"] == pid
    assert server.get(f"Patient/{pid}/_history/1").status_code == 200
    assert server.get(f"Patient/{pid}/_history/2").status_code == 410
    # Deleting again, or something that never existed, is not an error.
    assert server.delete(f"Patient/{pid}").status_code == 204
    assert server.delete("Patient/never-was").status_code == 204
    # An update after a deletion brings it back as a new version.
    back = server.put(f"Patient/{pid}", {**patient(), "id": pid})
    assert back.status_code == 201 and back.json()["meta"]["versionId"] == "3"


def test_json_patch(server):
    pid = server.post("Patient", patient()).json()["id"]
    r = server.patch(f"Patient/{pid}", [{"op": "replace", "path": "/gender", "value": "male"},
                                        {"op": "add", "path": "/active", "value": True}])
    assert r.status_code == 200
    assert r.json()["gender"] == "male" and r.json()["active"] is True and r.json()["meta"]["versionId"] == "2"
    assert server.patch(f"Patient/{pid}", [{"op": "test", "path": "/gender", "value": "female"}]).status_code == 422
    bad = server.patch(f"Patient/{pid}", [{"op": "replace", "path": "/gender", "value": 42}])
    assert bad.status_code == 422 and "Patient.gender" in bad.json()["issue"][0]["expression"][0]
    assert server.patch(f"Patient/{pid}", {"not": "a patch"}).status_code == 400
    assert server.patch(f"Patient/{pid}", [{"op": "replace", "path": "/id", "value": "x"}]).status_code == 422
    assert server.patch("Patient/nope", [{"op": "remove", "path": "/gender"}]).status_code == 404
    assert server.patch(f"Patient/{pid}", [], headers={"If-Match": 'W/"1"'}).status_code == 412
    assert server.get(f"Patient/{pid}").json()["meta"]["versionId"] == "2"


def test_conditional_create(server):
    headers = {"If-None-Exist": f"identifier={OID_INS}|2990175123456"}
    first = server.post("Patient", patient("2990175123456"), headers=headers)
    assert first.status_code == 201
    again = server.post("Patient", patient("2990175123456"), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    server.post("Patient", patient("2990175123456"))  # a duplicate, made without the condition
    assert server.post("Patient", patient("2990175123456"), headers=headers).status_code == 412
    by_id = server.post("Patient", patient(), headers={"If-None-Exist": f"_id={first.json()['id']}"})
    assert by_id.status_code == 200 and by_id.json()["id"] == first.json()["id"]


def test_conditional_update_and_delete(server):
    query = f"Patient?identifier={OID_INS}|1770175123456"
    created = server.put(query, patient("1770175123456"))
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = server.put(query, {**patient("1770175123456"), "gender": "male"})
    assert updated.status_code == 200 and updated.json()["id"] == pid and updated.json()["meta"]["versionId"] == "2"
    assert server.put(query, {**patient("1770175123456"), "id": "someone-else"}).status_code == 400
    assert server.delete(query).status_code == 204
    assert server.get(f"Patient/{pid}").status_code == 410
    assert server.delete(query).status_code == 204  # nothing left to delete
    server.post("Patient", patient("42"))
    server.post("Patient", patient("42"))
    assert server.delete(f"Patient?identifier={OID_INS}|42").status_code == 412
    assert server.delete("Patient").status_code == 412  # no criteria: never "delete everything"
    assert server.put("Patient?unknown-param=1", patient()).status_code == 400


def test_prefer_return(server):
    minimal = server.post("Patient", patient(), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b"" and minimal.headers["Location"]
    outcome = server.post("Patient", patient(), headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201 and outcome.json()["resourceType"] == "OperationOutcome"
    full = server.post("Patient", patient(), headers={"Prefer": "return=representation"})
    assert full.json()["resourceType"] == "Patient"


def test_history_type_and_system_levels_with_since_count_and_paging(server):
    ids = [server.post("Patient", patient(str(i))).json()["id"] for i in range(5)]
    assert server.post("Observation", observation(patient=f"Patient/{ids[0]}")).status_code == 201
    page = server.get("Patient/_history", params={"_count": 2}).json()
    assert page["total"] == 5 and len(page["entry"]) == 2
    assert [e["resource"]["id"] for e in page["entry"]] == ids[::-1][:2]
    seen = [e["resource"]["id"] for e in page["entry"]]
    while (nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None)):
        page = server.http.get(nxt).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert seen == ids[::-1]
    assert server.get("_history").json()["total"] == 6
    last = server.get(f"Patient/{ids[-1]}").json()["meta"]["lastUpdated"]
    assert server.get("_history", params={"_since": last}).json()["total"] >= 1
    assert server.get("_history", params={"_since": "2999-01-01T00:00:00Z"}).json()["total"] == 0
    assert server.get("_history", params={"_since": "yesterday"}).status_code == 400
    assert server.get("_history", params={"_count": "-1"}).status_code == 400
    assert server.get("Patient/nope/_history").status_code == 404


def test_conditional_read(server):
    created = server.post("Patient", patient())
    pid = created.json()["id"]
    assert server.get(f"Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert server.get(f"Patient/{pid}", headers={"If-None-Match": 'W/"0"'}).status_code == 200
    later = "Sun, 01 Jan 2090 00:00:00 GMT"
    assert server.get(f"Patient/{pid}", headers={"If-Modified-Since": later}).status_code == 304
    earlier = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert server.get(f"Patient/{pid}", headers={"If-Modified-Since": earlier}).status_code == 200


def test_validation_errors_name_the_path(server):
    r = server.post("Observation", {"resourceType": "Observation", "code": {"text": "weight"}})
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Observation.status"]
    r = server.post("Observation", {**observation(), "valueQuantity": {"value": "heavy"}})
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == ["Observation.valueQuantity.value"]
    r = server.post("Observation", {**observation(), "unknownElement": 1})
    assert r.status_code == 422 and "unknownElement" in r.json()["issue"][0]["expression"][0]


def test_wrong_type_unknown_type_and_bad_ids(server):
    assert server.post("Observation", patient()).status_code == 400
    assert server.post("Unicorn", {"resourceType": "Unicorn"}).status_code == 404
    assert server.get("Unicorn/1").status_code == 404
    assert server.get("Patient/" + "x" * 65).status_code == 400
    assert server.put("Patient/a_b", {**patient(), "id": "a_b"}).status_code == 400


def test_content_negotiation(server):
    pid = server.post("Patient", patient()).json()["id"]
    for accept in ("application/fhir+json", "application/json", "*/*", "application/fhir+json;q=0.9, */*;q=0.1"):
        assert server.get(f"Patient/{pid}", headers={"Accept": accept}).status_code == 200, accept
    for fmt in ("json", "application/fhir+json", "application/json"):
        assert server.get(f"Patient/{pid}", params={"_format": fmt}).status_code == 200, fmt
    for accept in ("application/fhir+xml", "application/xml", "text/html"):
        r = server.get(f"Patient/{pid}", headers={"Accept": accept})
        assert r.status_code == 406 and r.json()["resourceType"] == "OperationOutcome", accept
    assert server.get(f"Patient/{pid}", params={"_format": "xml"}).status_code == 406
    xml = server.http.post(server.url("Patient"), data="<Patient/>", headers={"Content-Type": "application/fhir+xml"})
    assert xml.status_code == 415 and xml.json()["resourceType"] == "OperationOutcome"
    pretty = server.get(f"Patient/{pid}", params={"_pretty": "true"})
    assert pretty.status_code == 200 and "\n" in pretty.text


def test_unknown_endpoints_and_methods(server):
    r = server.http.get(server.base.replace("/fhir", "/nothing-here"))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    for method, path in (("POST", "metadata"), ("DELETE", "metadata"), ("PUT", "metadata"), ("DELETE", "_history")):
        r = server.http.request(method, server.url(path), json={"resourceType": "Patient"})
        assert r.status_code == 405 and r.json()["resourceType"] == "OperationOutcome", (method, path, r.text)
        assert "GET" in r.headers["Allow"]


def test_capability_statement_claims_what_is_implemented(server):
    cs = server.get("metadata").json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    assert cs["kind"] == "instance" and "application/fhir+json" in cs["format"]
    types = {r["type"]: r for r in cs["rest"][0]["resource"]}
    for required in ("Patient", "Observation", "Condition", "MedicationRequest", "Subscription", "AuditEvent"):
        assert required in types
    codes = {i["code"] for i in types["Observation"]["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "create", "history-instance", "history-type"} <= codes
    assert types["Patient"]["conditionalCreate"] is True and types["Patient"]["versioning"] == "versioned-update"
    assert any(p["name"] == "identifier" for p in types["Patient"]["searchParam"])
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(cs)


def test_body_over_the_limit_gets_413(store):
    from kit.live import serve

    live = serve(store, max_body_bytes=2048)
    try:
        assert live.put("Patient/p1", {**patient(), "id": "p1"}).status_code == 201
        big = {**observation(), "note": [{"text": "x" * 4096}]}
        r = live.post("Observation", big)
        assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"
        assert live.post("Observation", observation()).status_code == 201
    finally:
        live.close()
