"""Hundreds of malformed or hostile requests: every answer is a 4xx OperationOutcome, never a 5xx."""

from __future__ import annotations

import copy
import json
import random

from kit.samples import observation

HOSTILE_VALUES = [
    None, True, 0, -1, 1e308, "", " ", "\x00", "\ud7ff", "💉" * 50, "x" * 100_000, [], {}, [[[]]],
    {"$where": "1"}, {"$gt": ""}, "'; DROP TABLE resources; --", "../../etc/passwd", "<script>alert(1)</script>",
    "2026-13-45", "9999999999999999999999999999", {"reference": "javascript:alert(1)"},
]

RAW_BODIES = [
    b"", b"{", b"[]", b"null", b"42", b'"string"', b"{\"resourceType\": }", b"\xff\xfe\x00", b"NaN",
    b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": NaN}}',
    b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1e999}}',
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"resourceType": "Patient", "resourceType": "Observation"}', b'{"resourceType": "Patient", "id": 42}',
    b'{"resourceType": null}', b'{"resourceType": ["Patient"]}', b'{"resourceType": "Patient", "meta": "x"}',
    b'{"resourceType": "Patient", "birthDate": "tomorrow"}', b'{"resourceType": "Patient", "gender": {"a": 1}}',
    b'{"resourceType": "Patient", "contained": [{"resourceType": "Patient", "contained": "x"}]}',
    b'{"resourceType": "Bundle", "type": "collection"}', b'{"resourceType": "OperationOutcome"}',
    b'{"resourceType": "Patient", "extension": [{"url": 5}]}',
]

HEADER_SETS = [
    {"If-Match": "W/"}, {"If-Match": 'W/"abc"'}, {"If-Match": "*"}, {"If-Match": 'W/"-1"'},
    {"If-None-Match": "garbage"}, {"If-Modified-Since": "not a date"}, {"If-None-Exist": "=&&=="},
    {"If-None-Exist": "unknown=1"}, {"If-None-Exist": "identifier"}, {"If-None-Exist": "_id=" + "a" * 5000},
    {"Prefer": "return=" + "x" * 1000}, {"Prefer": ";;;,,,=="}, {"Accept": "*/*;q=abc"}, {"Accept": "\x01\x02"},
    {"Accept": "application/fhir+xml;q=1, application/fhir+json;q=0"},
    {"Content-Type": "application/fhir+json; charset=latin-1"},
    {"Content-Type": "multipart/form-data; boundary=x"}, {"Content-Type": ";;;"}, {"Content-Length": "5"},
    {"Authorization": "Bearer " + "a" * 3000}, {"X-Forwarded-For": "1.2.3.4"}, {"Prefer": "handling=strict"},
]

PATHS = [
    "Patient/..%2F..%2Fetc", "Patient/%00", "Patient/a%20b", "Patient/" + "9" * 200, "patient/1", "PATIENT",
    "Patient/1/_history/-1", "Patient/1/_history/99999999999999999999", "Patient/1/_history/1.5",
    "Patient/_history?_count=abc", "_history?_since=2026-02-30T00:00:00Z", "_history?_cursor=abc",
    "_history?_cursor=-5", "Patient/1/_history?_cursor=" + "z" * 500, "Patient?identifier=" + "|" * 50,
    "Patient?_count=99999999999999999999999", "Patient?_count=-5", "Patient?_sort=" + "-" * 20,
    "Patient?_id=a,b,c," * 20, "Observation?subject=Patient/%00", "metadata?_format=xml", "$meta", "Patient/$x",
    "Patient?date=ge2026-99-99", "Patient/1/_history/1/extra", "Observation/_search?_count=abc",
]


def _mutations(rng: random.Random, base: dict, n: int) -> list[dict]:
    bodies = []
    for _ in range(n):
        body = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            target = body
            path = [rng.choice(list(target))]
            while isinstance(target.get(path[-1]), dict) and rng.random() < 0.5 and target[path[-1]]:
                target = target[path[-1]]
                path.append(rng.choice(list(target)))
            target[path[-1]] = rng.choice(HOSTILE_VALUES)
        bodies.append(body)
    return bodies


def _check(response, what: str) -> None:
    assert response.status_code < 500, f"{what} -> {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/fhir+json"), what
        assert response.json()["resourceType"] == "OperationOutcome", what
        assert "Traceback" not in response.text, what


def test_hundreds_of_hostile_requests_get_no_5xx(sqlite_server):
    server = sqlite_server
    rng = random.Random(20261123)
    sent = 0
    pid = server.post("Patient", {"resourceType": "Patient", "gender": "female"}).json()["id"]
    for body in _mutations(rng, observation(), 150):
        _check(server.post("Observation", body), f"POST mutated {json.dumps(body, default=str)[:200]}")
        _check(server.put(f"Observation/{pid}", body), "PUT mutated")
        sent += 2
    for raw in RAW_BODIES:
        for method, path in (("POST", "Patient"), ("PUT", f"Patient/{pid}"), ("PATCH", f"Patient/{pid}")):
            ctype = "application/json-patch+json" if method == "PATCH" else "application/fhir+json"
            r = server.http.request(method, server.url(path), data=raw, headers={"Content-Type": ctype})
            _check(r, f"{method} {path} raw {raw[:60]!r}")
            sent += 1
    for headers in HEADER_SETS:
        for method, path, body in (("GET", f"Patient/{pid}", None), ("POST", "Patient", {"resourceType": "Patient"}),
                                   ("PUT", f"Patient/{pid}", {"resourceType": "Patient", "id": pid}),
                                   ("DELETE", "Patient/other", None), ("GET", "Patient", None)):
            data = json.dumps(body).encode() if body is not None else None
            sent_headers = {"Content-Type": "application/fhir+json", **headers} if data else headers
            try:
                r = server.http.request(method, server.url(path), data=data, headers=sent_headers, timeout=10)
            except Exception as exc:  # a lying Content-Length may make the client, not the server, give up
                assert "Content-Length" in headers, f"{method} {path} {headers}: {exc}"
                continue
            _check(r, f"{method} {path} {headers}")
            sent += 1
    for path in PATHS:
        for method in ("GET", "DELETE", "POST", "PUT", "PATCH"):
            is_patch = method == "PATCH"
            ctype = "application/json-patch+json" if is_patch else "application/fhir+json"
            body = [] if is_patch else {"resourceType": "Patient"}
            r = server.http.request(method, server.url(path), json=body, headers={"Content-Type": ctype})
            _check(r, f"{method} {path}")
            sent += 1
    patches = [[{"op": "bogus"}], [{"op": "add"}], [{"op": "add", "path": "gender", "value": 1}], [1, 2],
               [{"op": "move", "from": "/nope", "path": "/x"}], [{"op": "remove", "path": "/resourceType"}],
               [{"op": "add", "path": "/contained", "value": [{"resourceType": "Unicorn"}]}], [None], [{"op": None}]]
    for ops in patches * 3:
        _check(server.patch(f"Patient/{pid}", ops), f"PATCH {ops}")
        sent += 1
    assert sent >= 300
    # The server is still healthy and the resource intact.
    assert server.get(f"Patient/{pid}").status_code == 200
