"""A day of Relais as its users live it, driven by the clients they use, with authentication on.

- a telemonitoring vendor (fhirpy) creates its patient with an INS, posts measures, patches;
- a coordinator (fhirclient) searches the measures with their patient included, page by page;
- a regulator (fhir-kit-client, Node) reads the audit trail of that day.

The Node part needs ``node`` and tests/clients/node_modules (``make test`` runs ``npm ci`` there when npm
is installed); without them it is skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fhirclient import server as fc_server
from fhirclient.models.observation import Observation as FCObservation
from fhirclient.models.patient import Patient as FCPatient
from fhirpy import SyncFHIRClient
from kit.outbox import drain

from tests.access.authkit import AuthServer, sqlite_store_fixture  # noqa: F401 (fixture)

HERE = Path(__file__).parent
OID_INS = "urn:oid:1.2.250.1.213.1.4.8"
INS = "2850275123457"
LOINC_WEIGHT = "29463-7"
FHIR = "application/fhir+json"


def _node_missing() -> str | None:
    if shutil.which("node") is None:
        return "Node is not installed: the fhir-kit-client part of the day is not run"
    if not (HERE / "node_modules" / "fhir-kit-client").is_dir():
        return "fhir-kit-client is not installed: run `make test` (npm ci in tests/clients)"
    return None


@pytest.fixture
def live(sqlite_store):  # noqa: F811 (fixture)
    server = AuthServer(sqlite_store)
    yield server
    server.close()


def _patient_body() -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": OID_INS, "value": INS}],
            "name": [{"family": "Lefèvre", "given": ["Jeanne"]}], "gender": "female", "birthDate": "1948-11-02"}


def _vendor(live) -> SyncFHIRClient:
    token = live.client_token("system/Patient.cruds system/Observation.cruds")
    return SyncFHIRClient(live.base, authorization=f"Bearer {token}", extra_headers={"Accept": FHIR})


def test_a_day_with_fhirpy_fhirclient_and_fhir_kit_client(live):
    # --- the vendor, with fhirpy ---------------------------------------------------------------
    vendor = _vendor(live)
    patient = vendor.resource("Patient", **{k: v for k, v in _patient_body().items() if k != "resourceType"})
    patient.save()
    pid = patient.id
    assert pid and patient["meta"]["versionId"] == "1"
    found = vendor.resources("Patient").search(identifier=f"{OID_INS}|{INS}").fetch_all()
    assert [p.id for p in found] == [pid]
    measures = []
    for day, kg in ((1, 61.2), (2, 61.0), (3, 60.4)):
        measure = vendor.resource("Observation", status="final", subject={"reference": f"Patient/{pid}"},
                                  code={"coding": [{"system": "http://loinc.org", "code": LOINC_WEIGHT}]},
                                  effectiveDateTime=f"2026-12-0{day}T08:00:00Z",
                                  valueQuantity={"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org",
                                                 "code": "kg"})
        measure.save()
        measures.append(measure)
    assert len({m.id for m in measures}) == 3
    # patches as fhirpy sends them (merge patches): a phone for the patient, a corrected measure
    patched = vendor.patch("Patient", pid, telecom=[{"system": "phone", "value": "0601020304"}])
    assert patched["telecom"][0]["value"] == "0601020304" and patched["meta"]["versionId"] == "2"
    measures[2].patch(status="amended")
    assert measures[2]["status"] == "amended"

    # --- the coordinator, with fhirclient: the measures with their patient, two a page -----------------
    coordinator = fc_server.FHIRServer(None, base_uri=live.base + "/")
    coordinator.session.headers["Authorization"] = f"Bearer {live.client_token('system/*.rs')}"
    search = FCObservation.where(struct={"subject": f"Patient/{pid}", "_count": "2", "_sort": "date"})
    pages = list(search.include("subject").perform_iter(coordinator))
    assert len(pages) == 2 and pages[0].total == 3
    matched = [e.resource for page in pages for e in page.entry if e.search.mode == "match"]
    assert [o.id for o in matched] == [m.id for m in measures]
    assert [o.valueQuantity.value for o in matched] == [61.2, 61.0, 60.4]
    assert matched[2].status == "amended"
    included = {e.resource.id for page in pages for e in page.entry if e.search.mode == "include"}
    assert included == {pid}
    read = FCPatient.read(pid, coordinator)
    assert read.telecom[0].value == "0601020304" and read.identifier[0].value == INS

    # --- the regulator, with fhir-kit-client: the audit trail of the day ------------------------------
    missing = _node_missing()
    if missing:
        pytest.skip(missing)
    drain(live.app)  # AuditEvents are written by the dispatcher, from the outbox
    regulator = live.client_token("system/AuditEvent.rs")
    done = subprocess.run(["node", str(HERE / "regulator.mjs"), live.base, regulator, pid], cwd=HERE,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trail = json.loads(done.stdout)
    vendor_id = _client_id(live, vendor)
    by_vendor = [e for e in trail["patient"]["events"] if e["client"] == vendor_id]
    assert {"create", "patch"} <= {e["subtype"] for e in by_vendor}
    assert trail["patient"]["pages"] >= 2  # three a page: the trail of one patient pages too
    assert all(e["outcome"] == "0" for e in by_vendor)
    assert any(e["subtype"] == "search" and any(pid in (x or "") and "Observation" in (x or "") for x in e["entities"])
               for e in trail["searches"]["events"])  # the coordinator's search, its query kept
    assert trail["patientRead"] == 403  # a regulator reads the audit trail, not the records


def _client_id(live, client: SyncFHIRClient) -> str:
    """The client id behind a fhirpy client's token (the token's own claim)."""
    token = client.authorization.removeprefix("Bearer ")
    return live.app.extensions["relais_auth"].tokens.decode(token)["client_id"]


def test_vendor_get_or_create_makes_one_patient_per_ins(live):
    vendor = _vendor(live)
    search = vendor.resources("Patient").search(identifier=f"{OID_INS}|{INS}")
    first, created = search.get_or_create(vendor.resource("Patient", **{
        k: v for k, v in _patient_body().items() if k != "resourceType"}))
    again, created_again = search.get_or_create(vendor.resource("Patient", **{
        k: v for k, v in _patient_body().items() if k != "resourceType"}))
    assert created and not created_again and again.id == first.id
    assert [p.id for p in search.fetch_all()] == [first.id]
