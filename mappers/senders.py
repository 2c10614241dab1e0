"""The identifier systems each partner registered for its patients (table ``feed_senders``): a feed finds a
patient by ``{"identifier": {"system", "value"}}`` only in a system its sender registered."""

from __future__ import annotations

TABLE = "feed_senders"


def patient_systems(store, client_id: str) -> tuple[str, ...]:
    """The systems ``client_id`` registered (none: it can name its patients by INS or Relais id only)."""
    doc = store.kv_get(TABLE, client_id) or {}
    return tuple(doc.get("patient_systems", ()))


def register(store, client_id: str, system: str) -> tuple[str, ...]:
    """Add ``system`` to what ``client_id`` may name its patients in; returns them all."""
    systems = patient_systems(store, client_id)
    if system not in systems:
        systems = (*systems, system)
        store.kv_put(TABLE, client_id, {"patient_systems": list(systems)})
    return systems


def unregister(store, client_id: str, system: str) -> tuple[str, ...]:
    systems = tuple(s for s in patient_systems(store, client_id) if s != system)
    store.kv_put(TABLE, client_id, {"patient_systems": list(systems)})
    return systems
