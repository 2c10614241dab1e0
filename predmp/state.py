"""Where a validated pre-DMP stands with the national record, kept on its DocumentReference (an extension).

States: ``queued`` (waiting, retried with backoff), ``sent``, ``refused`` (with the reason: the recipient's
refusal, the patient's objection), ``dead`` (the retry window passed). Pure: resource in, resource out.
"""

from __future__ import annotations

from .codes import EXPORT_EXTENSION

QUEUED, SENT, REFUSED, DEAD = "queued", "sent", "refused", "dead"
LABELS = {
    QUEUED: "En attente d'envoi au DMP",
    SENT: "Envoyé au DMP",
    REFUSED: "Non envoyé au DMP : refusé",
    DEAD: "Non envoyé au DMP : abandonné après le délai de nouvelles tentatives",
}
_VALUE = {"status": "valueCode", "label": "valueString", "reason": "valueString", "since": "valueDateTime",
          "date": "valueDateTime", "attempts": "valueInteger", "remoteDocumentReference": "valueString",
          "remoteBinary": "valueString"}


def export_state(resource: dict) -> dict:
    """The export state of a DocumentReference as a plain dict ({} when it was never queued)."""
    for extension in resource.get("extension") or []:
        if extension.get("url") == EXPORT_EXTENSION:
            return {sub["url"]: sub.get(_VALUE.get(sub.get("url"), "valueString"))
                    for sub in extension.get("extension") or [] if sub.get("url") in _VALUE}
    return {}


def with_state(resource: dict, status: str, when: str, **fields: object) -> dict:
    """``resource`` with its export state set to ``status`` at ``when``; other fields kept unless given."""
    state = {**export_state(resource), **{k: v for k, v in fields.items() if v is not None}}
    state.update(status=status, label=LABELS[status], date=when)
    if status == SENT:
        state.pop("reason", None)  # the last failed attempt's error no longer applies
    subs = [{"url": key, _VALUE[key]: state[key]} for key in _VALUE if state.get(key) not in (None, "")]
    others = [e for e in resource.get("extension") or [] if e.get("url") != EXPORT_EXTENSION]
    return {**resource, "extension": [*others, {"url": EXPORT_EXTENSION, "extension": subs}]}
