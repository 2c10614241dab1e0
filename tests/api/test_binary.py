"""Binary in its own content type: POST and PUT raw bytes, GET them back, or the Binary resource as FHIR JSON."""

from __future__ import annotations

import base64

import requests
from kit.live import serve
from kit.stores import make_store

from tests.access.authkit import AuthServer, sqlite_store_fixture  # noqa: F401 (fixture)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FHIR = "application/fhir+json"


def test_post_pdf_then_get_it_raw_or_as_fhir(server):
    r = server.http.post(server.url("Binary"), data=PDF, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["resourceType"] == "Binary" and created["contentType"] == "application/pdf"
    assert base64.b64decode(created["data"]) == PDF
    assert r.headers["Location"].endswith(f"/Binary/{created['id']}/_history/1")
    raw = server.http.get(server.url(f"Binary/{created['id']}"), headers={"Accept": "application/pdf"})
    assert raw.status_code == 200 and raw.content == PDF
    assert raw.headers["Content-Type"] == "application/pdf" and raw.headers["ETag"] == 'W/"1"'
    assert raw.headers["X-Content-Type-Options"] == "nosniff" and raw.headers["Content-Security-Policy"] == "sandbox"
    # any Accept that does not name FHIR gets the content: a browser, curl
    assert server.http.get(server.url(f"Binary/{created['id']}"), headers={"Accept": "*/*"}).content == PDF
    as_fhir = server.http.get(server.url(f"Binary/{created['id']}"), headers={"Accept": FHIR})
    assert as_fhir.headers["Content-Type"].startswith(FHIR) and as_fhir.json() == created
    assert server.http.get(server.url(f"Binary/{created['id']}"), params={"_format": "json"},
                           headers={"Accept": "*/*"}).json()["id"] == created["id"]
    vread = server.http.get(server.url(f"Binary/{created['id']}/_history/1"), headers={"Accept": "application/pdf"})
    assert vread.content == PDF
    cached = server.http.get(server.url(f"Binary/{created['id']}"),
                             headers={"Accept": "application/pdf", "If-None-Match": 'W/"1"'})
    assert cached.status_code == 304 and cached.content == b""


def test_put_raw_content_updates_and_keeps_versions(server):
    r = server.http.put(server.url("Binary/report-1"), data=b"first", headers={"Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    r = server.http.put(server.url("Binary/report-1"), data=b"second", headers={"Content-Type": "text/plain",
                                                                                "If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == 'W/"2"'
    assert server.http.get(server.url("Binary/report-1"), headers={"Accept": "text/plain"}).content == b"second"
    first = server.http.get(server.url("Binary/report-1/_history/1"), headers={"Accept": "text/plain"})
    assert first.content == b"first"
    stale = server.http.put(server.url("Binary/report-1"), data=b"third", headers={"Content-Type": "text/plain",
                                                                                   "If-Match": 'W/"1"'})
    assert stale.status_code == 412


def test_binary_as_a_fhir_resource_still_works(server):
    body = {"resourceType": "Binary", "contentType": "text/plain", "data": base64.b64encode(b"hello").decode()}
    created = server.post("Binary", body)
    assert created.status_code == 201
    read = server.get(f"Binary/{created.json()['id']}")
    assert read.json()["data"] == body["data"]
    assert server.get("Binary/_history").json()["type"] == "history"  # the generic routes still answer
    assert server.get("Binary", params={"_id": created.json()["id"]}).json()["total"] == 1


def test_security_context_header_is_kept(server):
    patient = server.post("Patient", {"resourceType": "Patient", "name": [{"family": "Martin"}]}).json()
    r = server.http.post(server.url("Binary"), data=b"scan", headers={
        "Content-Type": "image/png", "X-Security-Context": f"Patient/{patient['id']}"})
    assert r.status_code == 201 and r.json()["securityContext"] == {"reference": f"Patient/{patient['id']}"}
    bad = server.http.post(server.url("Binary"), data=b"scan", headers={"Content-Type": "image/png",
                                                                         "X-Security-Context": "nonsense"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_raw_content_over_the_body_limit_is_413(tmp_path):
    live = serve(make_store("sqlite", tmp_path), max_body_bytes=1000)
    try:
        r = live.http.post(live.url("Binary"), data=b"x" * 1001, headers={"Content-Type": "application/pdf"})
        assert r.status_code == 413 and r.json()["resourceType"] == "OperationOutcome"
        assert live.http.post(live.url("Binary"), data=b"x" * 600,
                              headers={"Content-Type": "application/pdf"}).status_code == 201
    finally:
        live.close()


def test_unknown_binary_is_404_in_any_accept(server):
    r = server.http.get(server.url("Binary/nope"), headers={"Accept": "application/pdf"})
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


def test_access_control_of_raw_binaries(sqlite_store):  # noqa: F811 (fixture)
    live = AuthServer(sqlite_store)
    try:
        writer = live.client_token("system/*.cruds")
        p1 = live.request("POST", "Patient", writer, json={"resourceType": "Patient", "gender": "female"}).json()["id"]
        # no token: 401, even for raw content
        assert requests.post(live.url("Binary"), data=PDF, headers={"Content-Type": "application/pdf"}).status_code \
            == 401
        created = live.request("POST", "Binary", writer, data=PDF, headers={
            "Content-Type": "application/pdf", "X-Security-Context": f"Patient/{p1}"})
        assert created.status_code == 201, created.text
        bid = created.json()["id"]
        # a reader without Binary scopes: 403
        observations_only = live.client_token("system/Observation.rs")
        refused = live.request("GET", f"Binary/{bid}", observations_only, headers={"Accept": "application/pdf"})
        assert refused.status_code == 403
        # Binary may be read, but its securityContext (Patient/p1) may not: 403 as FHIR and as content
        scoped = live.client_token("system/Binary.rs system/Patient.rs?gender=male")
        for accept in ("application/pdf", FHIR):
            r = live.request("GET", f"Binary/{bid}", scoped, headers={"Accept": accept})
            assert r.status_code == 403, (accept, r.text)
        allowed = live.client_token("system/Binary.rs system/Patient.rs?gender=female")
        r = live.request("GET", f"Binary/{bid}", allowed, headers={"Accept": "application/pdf"})
        assert r.status_code == 200 and r.content == PDF
    finally:
        live.close()
