"""A stand-in for the national record: an IHE MHD Document Recipient on loopback.

It checks every ITI-65 Bundle it receives (PDSm's constraints, and its own rules: a replacement names a
document it holds, the superseded one comes back in the same Bundle) and answers as the real one would,
by ``mode``: ``success`` (a transaction-response), ``refuse`` (422 with an OperationOutcome), ``unavailable``
(503) or ``hang`` (no answer until released). ``stop()`` closes the port (the recipient is down).
"""

from __future__ import annotations

import itertools
import json
import threading

from kit.live import QuietHandler
from kit.ports import free_port
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from predmp.pdsm import bundle_issues


def _outcome(status: int, code: str, text: str) -> Response:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return Response(json.dumps(body, ensure_ascii=False), status, content_type="application/fhir+json")


class Recipient:
    def __init__(self, ssl_context=None):
        self.port = free_port()
        self.scheme = "https" if ssl_context is not None else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}/fhir"
        self.ssl_context = ssl_context
        self.mode = "success"
        self.refusal = "Document refusé : le patient n'a pas de DMP actif"
        self.received: list[dict] = []  # every Bundle that reached it
        self.problems: list[list[str]] = []  # what it found wrong in each
        self.documents: dict[str, dict] = {}  # what it holds: "DocumentReference/<id>" -> resource
        self.released = threading.Event()
        self._ids = itertools.count(1)
        self.server = None
        self.start()

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True, request_handler=QuietHandler,
                                  ssl_context=self.ssl_context)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        """Down: the port is closed (connections refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self) -> None:
        self.released.set()
        self.stop()

    def check(self, bundle: dict) -> list[str]:
        problems = bundle_issues(bundle)
        for entry in bundle.get("entry") or []:
            resource, request = entry.get("resource") or {}, entry.get("request") or {}
            if resource.get("resourceType") != "DocumentReference":
                continue
            if request.get("method") == "PUT" and request.get("url") not in self.documents:
                problems.append(f"{request.get('url')} : document inconnu du destinataire")
            for relation in resource.get("relatesTo") or []:
                target = (relation.get("target") or {}).get("reference")
                if target not in self.documents:
                    problems.append(f"relatesTo : {target} inconnu du destinataire")
        return problems

    def app(self, environ, start_response):
        request = Request(environ)
        if request.method != "POST" or request.path.rstrip("/") != "/fhir":
            return _outcome(404, "not-found", "ITI-65 : POST [base]")(environ, start_response)
        try:
            bundle = json.loads(request.get_data())
        except ValueError:
            return _outcome(400, "structure", "corps JSON invalide")(environ, start_response)
        self.received.append(bundle)
        if self.mode == "hang":
            self.released.wait(30)
            return _outcome(503, "transient", "indisponible")(environ, start_response)
        if self.mode == "unavailable":
            return _outcome(503, "transient", "Service temporairement indisponible")(environ, start_response)
        problems = self.check(bundle)
        self.problems.append(problems)
        if problems:
            return _outcome(422, "invalid", "; ".join(problems))(environ, start_response)
        if self.mode == "refuse":
            return _outcome(422, "business-rule", self.refusal)(environ, start_response)
        entries = []
        for entry in bundle["entry"]:
            resource, request_ = entry["resource"], entry["request"]
            if request_["method"] == "PUT":
                self.documents[request_["url"]] = resource
                entries.append({"response": {"status": "200 OK", "location": f"{request_['url']}/_history/2"}})
                continue
            where = f"{resource['resourceType']}/{next(self._ids)}"
            self.documents[where] = resource
            entries.append({"response": {"status": "201 Created", "location": f"{where}/_history/1"}})
        body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        return Response(json.dumps(body), 200, content_type="application/fhir+json")(environ, start_response)
