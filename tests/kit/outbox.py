"""Draining an app's outbox in a test, as its scheduler would."""

from __future__ import annotations

from fhir_server.outbox import outbox_of


def drain(app) -> int:
    """Run ``app``'s outbox dispatcher until a claim completes nothing; the events completed."""
    return outbox_of(app).drain(app.extensions["relais_store"])
