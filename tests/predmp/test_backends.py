"""Building, validating and queueing a pre-DMP without HTTP, on each store backend (the write path's guard,
``_tag`` and date searches, the job stored with the write)."""

from __future__ import annotations

import pytest

from fhir_server import write as w
from fhir_server.actor import SERVER
from fhir_server.errors import FHIRError
from predmp.actor import predmp_actor
from predmp.drafts import build_draft, current_drafts
from predmp.state import export_state
from predmp.validation import EXPORT_KIND, validate_draft
from tests.predmp import records

BASE = "http://relais.test/fhir"


def test_build_rebuild_and_validate_on_each_backend(store):
    w.write(store, [w.Change(w.UPDATE, r["resourceType"], id=r["id"], resource=r) for r in records.known_patient()],
            SERVER)
    actor = predmp_actor(store)
    first = build_draft(store, "p1", BASE, actor)
    second = build_draft(store, "p1", BASE, actor)
    assert second.replaced == [first.document_reference["id"]]
    assert current_drafts(store, "p1") == [second.document_reference["id"]]
    sections = second.document["entry"][0]["resource"]["section"]
    vitals = next(s for s in sections if s["title"] == "Signes vitaux récents")
    assert "en hausse de 2,4 kg" in vitals["text"]["div"]
    with pytest.raises(FHIRError) as refused:
        validate_draft(store, first.document_reference["id"], {"fhirUser": "Practitioner/gp1"}, BASE, actor)
    assert refused.value.status == 409
    final = validate_draft(store, second.document_reference["id"], {"fhirUser": "Practitioner/gp1"}, BASE, actor)
    assert final["docStatus"] == "final" and export_state(final)["status"] == "queued"
    jobs = [e.payload for e in store.outbox_claim("test", 30.0, 1000) if e.payload.get("kind") == EXPORT_KIND]
    assert jobs == [{"kind": EXPORT_KIND, "document": final["id"], "patient": "p1",
                     "queued_at": jobs[0]["queued_at"]}]
    with pytest.raises(FHIRError) as locked:
        w.write(store, [w.Change(w.DELETE, "DocumentReference", id=final["id"])], None)
    assert locked.value.status == 409
