"""The one live-server helper: a WSGI app on a loopback port, served by werkzeug in a thread.

``serve(store)`` serves the real Relais app; stand-in peers (a client's JWKS host, a rest-hook
receiver) are served the same way.
"""

from __future__ import annotations

import threading

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from fhir_server.config import load_config

from .ports import free_port


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per request drowns test output
        pass


class LiveServer:
    """``app`` on 127.0.0.1:<port> (a free one by default); ``base`` is its FHIR base URL.

    ``http`` is a session for the tests' requests, asking for FHIR JSON unless ``accept`` says otherwise.
    """

    def __init__(self, app, port: int | None = None, accept: str | None = "application/fhir+json"):
        self.app = app
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.origin}/fhir"
        self.server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=QuietHandler)
        # A short poll interval: close() waits for it.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.http = requests.Session()
        if accept:
            self.http.headers["Accept"] = accept

    @property
    def store(self):
        return self.app.extensions["relais_store"]

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), **kw)

    def _send(self, method: str, path: str, body, content_type: str, kw: dict) -> requests.Response:
        headers = {"Content-Type": content_type, **kw.pop("headers", {})}
        return self.http.request(method, self.url(path), json=body, headers=headers, **kw)

    def post(self, path: str, body=None, **kw) -> requests.Response:
        return self._send("POST", path, body, "application/fhir+json", kw)

    def put(self, path: str, body=None, **kw) -> requests.Response:
        return self._send("PUT", path, body, "application/fhir+json", kw)

    def patch(self, path: str, ops, **kw) -> requests.Response:
        return self._send("PATCH", path, ops, "application/json-patch+json", kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.http.delete(self.url(path), **kw)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


def relais_app(store, base_url: str, **overrides):
    """The real app on ``store``: authentication and scheduler off unless ``overrides`` say otherwise."""
    settings = {"auth": False, "scheduler": False, "base_url": base_url, **overrides}
    return create_app(load_config(environ={}, **settings), store=store)


def serve(store, **overrides) -> LiveServer:
    """Serve a fresh Relais app on ``store`` (see ``relais_app``)."""
    port = free_port()
    return LiveServer(relais_app(store, f"http://127.0.0.1:{port}/fhir", **overrides), port)
