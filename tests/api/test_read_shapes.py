"""``_elements`` and ``_summary`` on read and vread, as on search: subsets marked SUBSETTED."""

from __future__ import annotations

OID_INS = "urn:oid:1.2.250.1.213.1.4.8"


def _patient() -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": OID_INS, "value": "1850275123456"}],
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Hélène Martin</div>"},
            "name": [{"family": "Martin"}], "gender": "female", "birthDate": "1950-03-01",
            "maritalStatus": {"text": "married"}}


def _subsetted(resource: dict) -> bool:
    return any(tag.get("code") == "SUBSETTED" for tag in resource.get("meta", {}).get("tag", []))


def test_read_with_elements(server):
    pid = server.post("Patient", _patient()).json()["id"]
    r = server.get(f"Patient/{pid}", params={"_elements": "name,gender"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"resourceType", "id", "meta", "name", "gender"} and _subsetted(body)
    assert r.headers["ETag"] == 'W/"1"'
    # as search shows it
    found = server.get("Patient", params={"_id": pid, "_elements": "name,gender"}).json()["entry"][0]["resource"]
    assert found == body


def test_read_with_summary(server):
    pid = server.post("Patient", _patient()).json()["id"]
    summary = server.get(f"Patient/{pid}", params={"_summary": "true"}).json()
    assert "maritalStatus" not in summary and "text" not in summary and summary["birthDate"] == "1950-03-01"
    assert _subsetted(summary)
    text = server.get(f"Patient/{pid}", params={"_summary": "text"}).json()
    assert "text" in text and "name" not in text
    data = server.get(f"Patient/{pid}", params={"_summary": "data"}).json()
    assert "text" not in data and data["maritalStatus"] == {"text": "married"}
    whole = server.get(f"Patient/{pid}", params={"_summary": "false"}).json()
    assert whole == server.get(f"Patient/{pid}").json() and not _subsetted(whole)
    bad = server.get(f"Patient/{pid}", params={"_summary": "count"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_vread_with_elements(server):
    pid = server.post("Patient", _patient()).json()["id"]
    body = server.get(f"Patient/{pid}/_history/1", params={"_elements": "birthDate"}).json()
    assert set(body) == {"resourceType", "id", "meta", "birthDate"} and _subsetted(body)
