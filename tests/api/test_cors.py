"""CORS for browser apps: off by default; RELAIS_CORS_ORIGINS names the origins allowed."""

from __future__ import annotations

import pytest
import requests

from fhir_server.config import ConfigError, load_config
from tests.access.authkit import AuthServer, sqlite_store_fixture  # noqa: F401 (fixture)

APP = "https://app.example.org"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "PUT",
             "Access-Control-Request-Headers": "authorization, content-type, if-match"}


def test_cors_is_off_by_default(sqlite_store):  # noqa: F811 (fixture)
    live = AuthServer(sqlite_store)
    try:
        r = requests.get(live.url("metadata"), headers={"Origin": APP})
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
        preflight = requests.options(live.url("Patient/p1"), headers=PREFLIGHT)
        assert "Access-Control-Allow-Origin" not in preflight.headers
    finally:
        live.close()


def test_allowed_origin_gets_preflight_and_exposed_headers(sqlite_store):  # noqa: F811 (fixture)
    live = AuthServer(sqlite_store, cors_origins=(APP,))
    try:
        preflight = requests.options(live.url("Patient/p1"), headers=PREFLIGHT)
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["Access-Control-Allow-Origin"] == APP
        allowed_headers = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "if-match"} <= allowed_headers
        assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        assert live.audit_events() == []  # a preflight is no interaction: nothing audited
        token = live.client_token("system/*.cruds")
        created = requests.post(live.url("Patient"), json={"resourceType": "Patient"}, headers={
            "Origin": APP, "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
        assert created.status_code == 201
        assert created.headers["Access-Control-Allow-Origin"] == APP
        exposed = {h.strip() for h in created.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"Location", "ETag", "Content-Location", "X-Progress"} <= exposed
        # a refusal is readable by the app too (it can tell a 401 from a network error)
        refused = requests.get(live.url("Patient"), headers={"Origin": APP})
        assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == APP
    finally:
        live.close()


def test_other_origins_get_no_cors_headers(sqlite_store):  # noqa: F811 (fixture)
    live = AuthServer(sqlite_store, cors_origins=(APP,))
    try:
        evil = {**PREFLIGHT, "Origin": "https://evil.example"}
        preflight = requests.options(live.url("Patient/p1"), headers=evil)
        assert "Access-Control-Allow-Origin" not in preflight.headers
        r = requests.get(live.url("metadata"), headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
    finally:
        live.close()


def test_origins_setting_is_checked():
    config = load_config(environ={"RELAIS_CORS_ORIGINS": "https://a.example, http://localhost:3000"})
    assert config.cors_origins == ("https://a.example", "http://localhost:3000")
    assert load_config(environ={}).cors_origins == ()
    with pytest.raises(ConfigError, match="RELAIS_CORS_ORIGINS"):
        load_config(environ={"RELAIS_CORS_ORIGINS": "https://a.example/path"})
