"""Task/$worklist as independent clients read it: fhirpy calls the operation, fhirclient's R4 models parse
the Bundle (strictly typed: a malformed List or entry would raise)."""

from __future__ import annotations

from fhirclient.models.bundle import Bundle as FCBundle
from fhirpy import SyncFHIRClient

from tests.worklist.worklist_data import ORDER, ward


def test_fhirpy_calls_it_and_fhirclient_parses_the_call_order(sqlite_server):
    for resource in ward():
        assert sqlite_server.put(f"{resource['resourceType']}/{resource['id']}", resource).status_code in (200, 201)
    client = SyncFHIRClient(sqlite_server.base)
    answer = client.execute("Task/$worklist", method="get", params={"_count": "50"})
    bundle = FCBundle(answer)  # strict: raises on any element of the wrong type
    matches = [e.resource.id for e in bundle.entry if e.search.mode == "match"]
    assert matches == ORDER
    lists = [e.resource for e in bundle.entry if e.resource.resource_type == "List"]
    first = next(x for x in lists if x.subject.reference == "Patient/p1")
    assert first.orderedBy.coding[0].code == "priority"
    assert [e.flag.coding[0].code for e in first.entry][:2] == ["general-practitioner", "advanced-practice-nurse"]
