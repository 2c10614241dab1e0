"""The outbox kind ``dmp-export``: send a validated pre-DMP to the national record (IHE MHD ITI-65, PDSm 3.1.1).

One job per validated document, written in the validation's own transaction. The handler decides again
when it runs: a patient who objected to feeding the DMP is never sent to it; a document replaced before
it went is not sent; the Bundle is checked against PDSm before it goes. The recipient down, hanging or
answering 5xx: the job is retried with the outbox's backoff until ``RELAIS_DMP_RETRY_WINDOW_S`` has
passed since it was queued, then it becomes a dead letter (``relais outbox``). A 4xx is a refusal,
kept with its reason. Every state lands on the DocumentReference and in an AuditEvent. Idempotent: a
document already sent or refused is not sent again.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import auth
from fhir_server import fhirjson
from fhir_server import write as w
from fhir_server.codes import CONSENT_KIND_SYSTEM, DMP_FEEDING
from fhir_server.config import Config
from fhir_server.locking import is_locked
from fhir_server.outbox import DEAD_LETTERS
from fhir_server.search.parser import parse
from fhir_server.store.base import Store

from . import audit, drafts, narrative
from .actor import decide, predmp_actor
from .mhd import Replaced, provide_bundle
from .pdsm import bundle_issues
from .state import DEAD, QUEUED, REFUSED, SENT, export_state, with_state
from .validation import EXPORT_KIND

log = logging.getLogger("relais.predmp")

OUTBOX_KIND = EXPORT_KIND
_RETRIED_STATUSES = (408, 425, 429)  # besides 5xx: the recipient asks to come back later


@dataclass(frozen=True)
class Settings:
    endpoint: str = ""
    cert: str = ""
    key: str = ""
    ca: str = ""
    timeout_s: float = 10.0
    window_s: float = 480.0
    source_oid: str = ""
    base_url: str = ""


def from_config(config: Config) -> Settings:
    source = config.dmp_source_oid or f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, config.base_url).int}"
    return Settings(config.dmp_endpoint, config.dmp_cert, config.dmp_key, config.dmp_ca, config.dmp_timeout_s,
                    config.dmp_retry_window_s, source, config.base_url)


class RecipientUnavailable(Exception):
    """The recipient could not take the Bundle now (down, hanging, 5xx): the job is retried."""


# endpoint -> (monotonic time until which it is taken as down, why). A recipient that hangs costs the
# dispatcher one timeout, not one per queued document: the others of the batch, and those retried one by
# one after it, fail at once for a short while (the outbox's backoff spaces the real attempts anyway).
_DOWN: dict[str, tuple[float, str]] = {}


def _cooldown_s(settings: Settings) -> float:
    return max(2.0, 2 * settings.timeout_s)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds_since(instant: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(instant.replace("Z", "+00:00"))).total_seconds()


def post(settings: Settings, body: bytes) -> tuple[int, bytes]:
    """POST the Bundle to the endpoint (mutual TLS on https); its status and body, or RecipientUnavailable."""
    parts = urlsplit(settings.endpoint)
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=settings.ca or None)
            if settings.cert:
                context.load_cert_chain(settings.cert, settings.key or None)
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=settings.timeout_s, context=context)
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=settings.timeout_s)
        try:
            connection.request("POST", parts.path or "/", body, {
                "Content-Type": "application/fhir+json; charset=utf-8", "Accept": "application/fhir+json",
                "User-Agent": "Relais pre-DMP (IHE MHD Document Source)"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, TLS handshake failed
        raise RecipientUnavailable(f"destinataire injoignable ({type(exc).__name__}: {exc})") from None


def refusal_text(body: bytes, status: int) -> str:
    """What a refusal says: its OperationOutcome's diagnostics (or details), else the status."""
    try:
        outcome = json.loads(body)
        texts = [i.get("diagnostics") or (i.get("details") or {}).get("text") for i in outcome.get("issue") or []]
        texts = [t for t in texts if t]
    except (ValueError, AttributeError):
        texts = []
    return f"refus du destinataire (HTTP {status}) : " + ("; ".join(texts) if texts else "sans motif donné")


def locations(body: bytes) -> list[str | None]:
    """The ``DocumentReference/<id>`` each entry of a transaction-response names (without _history)."""
    try:
        response = json.loads(body)
    except ValueError:
        return []
    found: list[str | None] = []
    for entry in response.get("entry") or [] if isinstance(response, dict) else []:
        location = (entry.get("response") or {}).get("location")
        if isinstance(location, str):
            parts = location.split("/_history")[0].rstrip("/").split("/")
            found.append("/".join(parts[-2:]) if len(parts) >= 2 else None)
        else:
            found.append(None)
    return found


def objection(store: Store, patient_id: str) -> dict | None:
    """The patient's active Consent objecting to feeding the DMP, when the latest one says deny."""
    query = parse("Consent", [("patient", f"Patient/{patient_id}"), ("status", "active"),
                              ("category", f"{CONSENT_KIND_SYSTEM}|{DMP_FEEDING}"), ("_count", "100")])
    consents = [v.resource for v in store.read_many("Consent", store.search(query).ids) if v.resource]
    if not consents:
        return None
    latest = max(consents, key=_stated)
    return latest if (latest.get("provision") or {}).get("type") == "deny" else None


def _stated(consent: dict) -> datetime:
    """When the patient said it (``dateTime``), else when the platform learned it (``meta.lastUpdated``)."""
    for text in (consent.get("dateTime"), (consent.get("meta") or {}).get("lastUpdated")):
        if isinstance(text, str):
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def replaced_one(store: Store, patient_id: str, docref: dict) -> tuple[dict, bytes | None] | None:
    """The patient's latest other pre-DMP already in the national record (sent, still current), with its bytes."""
    query = drafts.current_query(patient_id)
    candidates = []
    for stored in store.read_many("DocumentReference", store.search(query).ids):
        other = stored.resource or {}
        # locked: validated by the platform, not a DocumentReference a client dressed up as one
        if other.get("id") != docref["id"] and other.get("docStatus") == "final" and is_locked(other) \
                and export_state(other).get("status") == SENT:
            candidates.append(other)
    if not candidates:
        return None
    latest = max(candidates, key=lambda d: str(d.get("date")))
    return latest, _content(store, latest)


def _content(store: Store, docref: dict) -> bytes | None:
    binary = store.read("Binary", docref["content"][0]["attachment"]["url"].split("/")[-1])
    return base64.b64decode(binary.resource["data"]) if binary and binary.resource else None


class _Export:
    """One run of one job: reads, decides, sends, and records the state it reached."""

    def __init__(self, settings: Settings, store: Store, docref_id: str):
        self.settings, self.store, self.docref_id = settings, store, docref_id
        self.actor = predmp_actor(store)

    def finish(self, status: str, reason: str | None = None, also: list[w.Change] = (), **fields: Any) -> None:
        stored = self.store.read("DocumentReference", self.docref_id)
        assert stored is not None and stored.resource is not None
        now = _now()
        updated = with_state(stored.resource, status, now, reason=reason, **fields)
        changes = [w.Change(w.UPDATE, "DocumentReference", id=self.docref_id, resource=updated,
                            if_match=stored.version), *also]
        for change in changes:
            decide(self.actor, change.action, change.resource_type, change.resource)
        results = w.write(self.store, changes, self.actor)
        auth.audit_write(self.store, self.actor, results, self.settings.base_url)
        if status != QUEUED:
            audit.record(self.store, updated, status, now, reason, self.settings.endpoint)
        log.info("pre-DMP DocumentReference/%s: %s%s", self.docref_id, status, f" ({reason})" if reason else "")

    def retry_or_die(self, state: dict, reason: str) -> None:
        since = state.get("since") or _now()
        if _seconds_since(since) >= self.settings.window_s:
            self.finish(DEAD, reason)
            self.store.kv_put(DEAD_LETTERS, f"{OUTBOX_KIND}-{self.docref_id}-{int(time.time())}", {
                "payload": {"kind": OUTBOX_KIND, "document": self.docref_id},
                "attempts": int(state.get("attempts") or 0) + 1, "error": reason, "at": time.time()})
            return
        self.finish(QUEUED, f"nouvel essai prévu : {reason}", attempts=int(state.get("attempts") or 0) + 1)
        raise RecipientUnavailable(reason)

    def run(self) -> None:
        stored = self.store.read("DocumentReference", self.docref_id)
        if stored is None or stored.deleted or stored.resource is None:
            return
        docref = stored.resource
        state = export_state(docref)
        if docref.get("docStatus") != "final" or state.get("status") in (SENT, REFUSED):
            return  # done already (a redelivered job)
        if state.get("status") == DEAD:  # an operator put the dead letter back: a new retry window
            self.finish(QUEUED, "renvoi demandé par un opérateur", since=_now(), attempts=0)
            state = export_state(self.store.read("DocumentReference", self.docref_id).resource)  # type: ignore
        if docref.get("status") != "current":
            self.finish(REFUSED, "remplacé par un pré-DMP plus récent avant son envoi : non envoyé")
            return
        patient_id = docref["subject"]["reference"].split("/")[1]
        patient = self.store.read("Patient", patient_id)
        denied = objection(self.store, patient_id)
        if denied is not None:
            self.finish(REFUSED, f"le patient s'est opposé à l'alimentation de son DMP (Consent/{denied['id']}) : "
                                 "le document n'est pas envoyé")
            return
        if patient is None or patient.resource is None or narrative.ins(patient.resource) is None:
            self.finish(REFUSED, "le patient n'a plus d'INS : le document ne peut pas être envoyé")
            return
        practitioner = self.store.read("Practitioner", docref["authenticator"]["reference"].split("/")[1])
        data = _content(self.store, docref)
        if practitioner is None or practitioner.resource is None or data is None:
            self.finish(REFUSED, "le document ou le médecin qui l'a validé est introuvable")
            return
        replaces, replaced_data, older = None, None, replaced_one(self.store, patient_id, docref)
        if older is not None:
            old, replaced_data = older
            old_state = export_state(old)
            old_doctor = self.store.read("Practitioner", old["authenticator"]["reference"].split("/")[1])
            replaces = Replaced(old, old_state.get("remoteDocumentReference"), old_state.get("remoteBinary"),
                                old_doctor.resource if old_doctor and old_doctor.resource else practitioner.resource)
        bundle = provide_bundle(docref, data, patient.resource, practitioner.resource, self.settings.source_oid,
                                _now(), replaces, replaced_data)
        problems = bundle_issues(bundle)
        if problems:
            self.finish(REFUSED, "lot non conforme au profil PDSm, non envoyé : " + "; ".join(problems))
            return
        if not self.settings.endpoint:
            self.retry_or_die(state, "RELAIS_DMP_ENDPOINT n'est pas configuré")
            return
        down = _DOWN.get(self.settings.endpoint)
        if down is not None and down[0] > time.monotonic():
            self.retry_or_die(state, f"{down[1]} (essai précédent, il y a moins de "
                                     f"{int(_cooldown_s(self.settings))} s)")
            return
        try:
            status, body = post(self.settings, fhirjson.dumps(bundle))
        except RecipientUnavailable as exc:
            _DOWN[self.settings.endpoint] = (time.monotonic() + _cooldown_s(self.settings), str(exc))
            self.retry_or_die(state, str(exc))
            return
        _DOWN.pop(self.settings.endpoint, None)
        if 200 <= status < 300:
            where = locations(body)
            also = []
            if older is not None:
                superseded = {**older[0], "status": "superseded"}
                also.append(w.Change(w.UPDATE, "DocumentReference", id=older[0]["id"], resource=superseded))
            self.finish(SENT, None, also, remoteDocumentReference=where[1] if len(where) > 1 else None,
                        remoteBinary=where[2] if len(where) > 2 else None, attempts=int(state.get("attempts") or 0) + 1)
        elif status >= 500 or status in _RETRIED_STATUSES:
            self.retry_or_die(state, f"le destinataire a répondu HTTP {status}")
        else:
            self.finish(REFUSED, refusal_text(body, status))


def deliver(settings: Settings, store: Store, payloads: list[dict]) -> None:
    """Outbox handler of ``dmp-export``: one export a payload; the first that must be retried raises."""
    failed: Exception | None = None
    for payload in payloads:
        try:
            _Export(settings, store, payload["document"]).run()
        except Exception as exc:  # the others of the batch still run; the dispatcher retries the batch one by one
            failed = failed or exc
    if failed is not None:
        raise failed


def mark_dead(settings: Settings, store: Store, payload: dict, error: str) -> None:
    """Dead-letter handler: the outbox gave up on this job (its own attempts ran out) before our window did."""
    export = _Export(settings, store, payload["document"])
    stored = store.read("DocumentReference", payload["document"])
    if stored is not None and stored.resource and export_state(stored.resource).get("status") == QUEUED:
        export.finish(DEAD, f"abandon après les nouvelles tentatives de l'outbox : {error}")
