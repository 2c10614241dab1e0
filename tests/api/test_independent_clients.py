"""Independent FHIR clients (fhirpy, fhirclient) against the served app: they catch what ours would forgive."""

from __future__ import annotations

from fhirclient import server as fc_server
from fhirclient.models.patient import Patient as FCPatient
from fhirpy import SyncFHIRClient


def test_fhirpy_create_read_update_delete_and_search(server):
    client = SyncFHIRClient(server.base, extra_headers={"Accept": "application/fhir+json"})
    patient = client.resource("Patient", identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "P1"}],
                              name=[{"family": "Durand"}])
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"
    patient["gender"] = "female"
    patient.save()
    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["gender"] == "female" and fetched["meta"]["versionId"] == "2"
    found = client.resources("Patient").search(identifier="urn:oid:1.2.250.1.213.1.4.8|P1").fetch()
    assert [p.id for p in found] == [patient.id]
    patient.delete()
    assert server.get(f"Patient/{patient.id}").status_code == 410


def test_fhirclient_reads_capabilities_and_resources(server):
    created = server.post("Patient", {"resourceType": "Patient", "name": [{"family": "Bernard"}]}).json()
    smart = fc_server.FHIRServer(None, base_uri=server.base + "/")
    smart.get_capability()
    assert smart.capabilityStatement.fhirVersion == "4.0.1"
    read = FCPatient.read(created["id"], smart)
    assert read.name[0].family == "Bernard"
