"""The patch interaction in each format clients send: JSON Patch, JSON Merge Patch, FHIRPath Patch.

Over HTTP on every backend, in Bundles, and through fhirpy's own ``patch()`` (a merge patch sent as
``application/json``, which got 400 before merge patch was understood).
"""

from __future__ import annotations

import base64
import json

import pytest
from fhirpy import SyncFHIRClient

MERGE = "application/merge-patch+json"
FHIR = "application/fhir+json"
OID_INS = "urn:oid:1.2.250.1.213.1.4.8"


def _patient(server, **extra) -> dict:
    body = {"resourceType": "Patient", "identifier": [{"system": OID_INS, "value": "1850275123456"}],
            "name": [{"family": "Martin", "given": ["Hélène", "Marie"]}], "gender": "female",
            "birthDate": "1950-03-01", **extra}
    created = server.post("Patient", body)
    assert created.status_code == 201, created.text
    return created.json()


def _send(server, path: str, body, content_type: str, **headers):
    return server.http.patch(server.url(path), data=json.dumps(body), headers={"Content-Type": content_type,
                                                                                **headers})


def _operation(kind: str, path: str, **parts) -> dict:
    part = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value":
            part.append({"name": "value", **value})
        elif name == "name":
            part.append({"name": "name", "valueString": value})
        else:
            part.append({"name": name, "valueInteger": value})
    return {"name": "operation", "part": part}


def _fhirpath_patch(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def _outcome(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


# ---- JSON Merge Patch -------------------------------------------------------------------------


def test_merge_patch_sets_replaces_and_removes(server):
    pid = _patient(server)["id"]
    r = _send(server, f"Patient/{pid}", {"gender": "male", "birthDate": None, "active": True,
                                         "name": [{"family": "Durand"}]}, MERGE)
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["gender"] == "male" and patched["active"] is True
    assert "birthDate" not in patched  # null removes (RFC 7396)
    assert patched["name"] == [{"family": "Durand"}]  # arrays are replaced whole
    assert patched["identifier"][0]["value"] == "1850275123456"  # untouched
    assert r.headers["ETag"] == 'W/"2"'
    assert server.get(f"Patient/{pid}").json()["gender"] == "male"


def test_merge_patch_sent_as_plain_json_is_a_merge_patch(server):
    pid = _patient(server)["id"]
    r = _send(server, f"Patient/{pid}", {"gender": "other"}, "application/json")
    assert r.status_code == 200 and r.json()["gender"] == "other"


def test_merge_patch_is_conditional_and_checks_if_match(server):
    pid = _patient(server)["id"]
    r = _send(server, f"Patient?identifier={OID_INS}|1850275123456", {"gender": "unknown"}, MERGE)
    assert r.status_code == 200 and r.json()["id"] == pid and r.json()["gender"] == "unknown"
    _outcome(_send(server, f"Patient/{pid}", {"gender": "male"}, MERGE, **{"If-Match": 'W/"1"'}), 412)


@pytest.mark.parametrize(("body", "status"), [
    ([{"op": "remove", "path": "/gender"}], 400),  # an array is no merge patch of a resource
    ("just a string", 400),
    ({"id": "another"}, 422),  # may not change the id
    ({"resourceType": "Observation"}, 422),
    ({"gender": 42}, 422),  # the result is no valid Patient
    ({"birthDate": "yesterday"}, 422),
])
def test_bad_merge_patches_are_refused(server, body, status):
    pid = _patient(server)["id"]
    _outcome(_send(server, f"Patient/{pid}", body, MERGE), status)
    assert server.get(f"Patient/{pid}").json()["meta"]["versionId"] == "1"


def test_undecodable_merge_patch_is_400(server):
    pid = _patient(server)["id"]
    r = server.http.patch(server.url(f"Patient/{pid}"), data=b"{not json", headers={"Content-Type": MERGE})
    _outcome(r, 400)


# ---- FHIRPath Patch ---------------------------------------------------------------------------


def test_fhirpath_patch_replace_add_insert_delete_move(server):
    pid = _patient(server, telecom=[{"system": "phone", "value": "0102030405"}])["id"]
    patch = _fhirpath_patch(
        _operation("replace", "Patient.gender", value={"valueCode": "male"}),
        _operation("replace", "Patient.name.given[1]", value={"valueString": "Maria"}),
        _operation("add", "Patient", name="active", value={"valueBoolean": True}),
        _operation("add", "Patient", name="address", value={"valueAddress": {"city": "Guéret"}}),
        _operation("add", "Patient.name[0]", name="prefix", value={"valueString": "Mme"}),
        _operation("insert", "Patient.telecom", index=0, value={"valueContactPoint": {"system": "email",
                                                                                       "value": "h@example.org"}}),
        _operation("insert", "Patient.name[0].given", index=0, value={"valueString": "Anne"}),
        _operation("move", "Patient.name[0].given", source=2, destination=0),
        _operation("delete", "Patient.birthDate"),
        _operation("delete", "Patient.identifier.where(system='urn:none')"),  # matches nothing: nothing to do
    )
    r = server.http.patch(server.url(f"Patient/{pid}"), json=patch, headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["gender"] == "male" and patched["active"] is True
    assert patched["address"] == [{"city": "Guéret"}]  # address repeats: added as a list
    assert patched["name"][0]["prefix"] == ["Mme"]
    assert patched["name"][0]["given"] == ["Maria", "Anne", "Hélène"]
    assert [t["system"] for t in patched["telecom"]] == ["email", "phone"]
    assert "birthDate" not in patched
    assert server.get(f"Patient/{pid}").json() == patched


def test_fhirpath_patch_deletes_the_last_element_of_a_list_and_the_list(server):
    pid = _patient(server)["id"]
    r = server.http.patch(server.url(f"Patient/{pid}"), json=_fhirpath_patch(
        _operation("delete", "Patient.identifier[0]")), headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.text
    assert "identifier" not in r.json()  # FHIR JSON has no empty arrays


def test_fhirpath_patch_replaces_a_choice_element_with_another_type(server):
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                   "valueQuantity": {"value": 72.4, "unit": "kg"}}
    oid = server.post("Observation", observation).json()["id"]
    patch = _fhirpath_patch(_operation("replace", "Observation.value", value={"valueString": "not measured"}),
                            _operation("add", "Observation", name="effective",
                                       value={"valueDateTime": "2026-12-01T08:00:00Z"}))
    r = server.http.patch(server.url(f"Observation/{oid}"), json=patch, headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valueString"] == "not measured" and "valueQuantity" not in body
    assert body["effectiveDateTime"] == "2026-12-01T08:00:00Z"


def test_fhirpath_patch_adds_a_backbone_element_given_as_parts(server):
    pid = _patient(server)["id"]
    contact = {"name": "value", "part": [{"name": "name", "valueHumanName": {"family": "Petit"}},
                                         {"name": "gender", "valueCode": "male"}]}
    patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
        {"name": "name", "valueString": "contact"}, contact]}]}
    r = server.http.patch(server.url(f"Patient/{pid}"), json=patch, headers={"Content-Type": FHIR})
    assert r.status_code == 200, r.text
    assert r.json()["contact"] == [{"name": {"family": "Petit"}, "gender": "male"}]


@pytest.mark.parametrize(("patch", "status"), [
    ({"resourceType": "Parameters"}, 400),  # no operation
    (_fhirpath_patch({"name": "op", "part": []}), 400),  # not named operation
    (_fhirpath_patch(_operation("upsert", "Patient.gender")), 400),  # unknown type
    (_fhirpath_patch(_operation("replace", "Patient.gender")), 400),  # replace without a value
    (_fhirpath_patch(_operation("delete", "Patient.gender", index=1)), 400),  # a part delete does not take
    (_fhirpath_patch(_operation("insert", "Patient.name", index=-1, value={"valueHumanName": {}})), 400),
    (_fhirpath_patch(_operation("delete", "Patient.name.where(")), 400),  # not FHIRPath
    (_fhirpath_patch(_operation("delete", "1 + 1")), 400),  # a value, not an element
    (_fhirpath_patch(_operation("delete", "Patient.name.given")), 422),  # two elements
    (_fhirpath_patch(_operation("replace", "Patient.active", value={"valueBoolean": True})), 422),  # none
    (_fhirpath_patch(_operation("add", "Patient", name="gender", value={"valueCode": "male"})), 422),  # has one
    (_fhirpath_patch(_operation("insert", "Patient.name", index=5, value={"valueHumanName": {}})), 422),
    (_fhirpath_patch(_operation("move", "Patient.name[0].given", source=0, destination=7)), 422),
    (_fhirpath_patch(_operation("replace", "Patient.id", value={"valueId": "other"})), 422),
    (_fhirpath_patch(_operation("replace", "Patient.gender", value={"valueInteger": 5})), 422),  # no code
])
def test_bad_fhirpath_patches_are_refused(server, patch, status):
    pid = _patient(server)["id"]
    r = server.http.patch(server.url(f"Patient/{pid}"), json=patch, headers={"Content-Type": FHIR})
    _outcome(r, status)
    assert server.get(f"Patient/{pid}").json()["meta"]["versionId"] == "1"


# ---- JSON Patch keeps working, and the formats in Bundles ---------------------------------------


def test_json_patch_is_still_json_patch(server):
    pid = _patient(server)["id"]
    r = server.patch(f"Patient/{pid}", [{"op": "replace", "path": "/gender", "value": "male"}])
    assert r.status_code == 200 and r.json()["gender"] == "male"
    r = _send(server, f"Patient/{pid}", [{"op": "add", "path": "/active", "value": False}], "application/json")
    assert r.status_code == 200 and r.json()["active"] is False


def _entry(url: str, resource: dict) -> dict:
    return {"resource": resource, "request": {"method": "PATCH", "url": url}}


def test_bundle_patch_entries_in_each_format(sqlite_server):
    first, second = _patient(sqlite_server)["id"], _patient(sqlite_server)["id"]
    merge = {"resourceType": "Binary", "contentType": MERGE,
             "data": base64.b64encode(json.dumps({"gender": "male"}).encode()).decode()}
    fhirpath = _fhirpath_patch(_operation("add", "Patient", name="active", value={"valueBoolean": True}))
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [_entry(f"Patient/{first}", merge), _entry(f"Patient/{second}", fhirpath)]}
    r = sqlite_server.post("", bundle)
    assert r.status_code == 200, r.text
    merged, patched = (sqlite_server.get(f"Patient/{pid}").json() for pid in (first, second))
    assert merged["gender"] == "male" and merged["meta"]["versionId"] == "2"
    assert patched["active"] is True and patched["gender"] == "female" and patched["meta"]["versionId"] == "2"


def test_bundle_patch_entry_with_a_bad_fhirpath_patch_names_the_entry(sqlite_server):
    pid = _patient(sqlite_server)["id"]
    bad = _fhirpath_patch(_operation("replace", "Patient.active", value={"valueBoolean": True}))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [_entry(f"Patient/{pid}", bad)]}
    r = sqlite_server.post("", bundle)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"].startswith("422")


# ---- fhirpy ------------------------------------------------------------------------------------


def test_fhirpy_patch(server):
    client = SyncFHIRClient(server.base, extra_headers={"Accept": FHIR})
    patient = client.resource("Patient", name=[{"family": "Durand"}], gender="female", birthDate="1950-03-01")
    patient.save()
    patched = client.patch("Patient", patient.id, gender="male", birthDate=None)
    assert patched["gender"] == "male" and "birthDate" not in patched
    patient.patch(active=True)
    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["active"] is True and fetched["gender"] == "male" and fetched["meta"]["versionId"] == "3"


# ---- the formats as functions ------------------------------------------------------------------

# RFC 7396, Appendix A (those whose target and patch are objects, as a resource and its patch are)
RFC_7396_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
def test_merge_patch_follows_rfc_7396(target, patch, result):
    from fhir_server.patch import MERGE_PATCH, apply

    before = json.dumps(target)
    assert apply(target, patch, MERGE_PATCH) == result
    assert json.dumps(target) == before  # the stored resource is never changed in place


def test_format_of_a_patch_document():
    from fhir_server.patch import FHIRPATH_PATCH, JSON_PATCH, MERGE_PATCH, format_of

    assert format_of("application/json-patch+json", {}) == JSON_PATCH  # the media type decides
    assert format_of("application/merge-patch+json; charset=utf-8", []) == MERGE_PATCH
    assert format_of("application/json", []) == JSON_PATCH
    assert format_of("application/fhir+json", {"resourceType": "Parameters"}) == FHIRPATH_PATCH
    assert format_of("application/json", {"gender": "male"}) == MERGE_PATCH
