"""RELAIS_RESTHOOK_ALLOW over REST: a Subscription may only name an endpoint under an allowed prefix."""

from __future__ import annotations

from kit.live import serve

from tests.subscriptions.hookkit import subscription

BP = "Observation?code=http://loinc.org|85354-9"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def test_endpoints_outside_the_allow_list_are_refused_with_422(store):
    live = serve(store, resthook_allow=("https://partner.example/hooks/",))
    try:
        refused = live.http.post(f"{live.base}/Subscription", json=subscription("http://127.0.0.1:22/", BP),
                                 headers=FHIR_JSON)
        assert refused.status_code == 422
        outcome = refused.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "RELAIS_RESTHOOK_ALLOW" in outcome["issue"][0]["diagnostics"]
        accepted = live.http.post(f"{live.base}/Subscription", json=subscription("https://partner.example/hooks/1", BP),
                                  headers=FHIR_JSON)
        assert accepted.status_code == 201 and accepted.json()["status"] == "active"
        assert len(store.scan("Subscription", None, 10)) == 1
    finally:
        live.close()
