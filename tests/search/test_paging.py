"""Paging links that stay correct while other clients write: search snapshots, over real HTTP.

The app is served on a loopback port (LiveServer); writers run in other threads with their own
connections. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from kit.live import serve
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server
from kit.samples import observation
from kit.stores import make_store

from fhir_server.actor import SERVER
from fhir_server.scheduler import purge_search_snapshots
from fhir_server.searching import custom, paging
from fhir_server.store import open_store
from fhir_server.write import Change, write

# The auth test kit lives beside the access tests; its fixtures are not needed, only AuthServer.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "access"))
from authkit import AuthServer  # noqa: E402

DEADLINE_S = 30.0
COLOUR = "http://relais.example/fhir/StructureDefinition/favourite-colour"


def link(bundle: dict, relation: str) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == relation), None)


def matches(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def snapshots(store) -> list[str]:
    return [key for key, _ in store.kv_list(paging.TABLE)]


def create_many(server, code: str, n: int, patient: str = "Patient/p1") -> list[str]:
    if server.get(patient).status_code == 404:  # a reference to a missing Patient is refused
        assert server.put(patient, {"resourceType": "Patient", "id": patient.split("/")[1]}).status_code == 201
    return [server.post("Observation", observation(float(i), patient, code)).json()["id"] for i in range(n)]


class Writer(threading.Thread):
    """Creates matching resources and deletes ``doomed`` ones until stopped, on its own connection."""

    def __init__(self, base: str, make: Callable[[], dict], doomed: list[str], rtype: str = "Observation"):
        super().__init__(daemon=True)
        self.base, self.make, self.doomed, self.rtype = base, make, list(doomed), rtype
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.writes = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        http = requests.Session()
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        try:
            while not self.stop.is_set():
                r = http.post(f"{self.base}/{self.rtype}", json=self.make(), headers=headers)
                assert r.status_code == 201, r.text
                self.created.append(r.json()["id"])
                if self.doomed:
                    victim = self.doomed.pop(0)
                    assert http.delete(f"{self.base}/{self.rtype}/{victim}").status_code in (200, 204)
                    self.deleted.append(victim)
                with self.progress:
                    self.writes += 1
                    self.progress.notify_all()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            with self.progress:
                self.progress.notify_all()
        finally:
            http.close()

    def wait_for_writes_beyond(self, seen: int) -> int:
        """Block until the writer has done more than ``seen`` writes (deadline); the new count."""
        deadline = time.monotonic() + DEADLINE_S
        with self.progress:
            while self.writes <= seen and self.error is None:
                left = deadline - time.monotonic()
                assert left > 0, "the writer made no progress"
                self.progress.wait(left)
        assert self.error is None, self.error
        return self.writes


def walk(http: requests.Session, first: dict, writer: Writer | None = None) -> list[dict]:
    """Every page from ``first`` by its next links; with a writer, writes happen between all pages."""
    pages = [first]
    seen = 0
    while (nxt := link(pages[-1], "next")) is not None:
        if writer is not None:
            seen = writer.wait_for_writes_beyond(seen)
        r = http.get(nxt, headers={"Accept": "application/fhir+json"})
        assert r.status_code == 200, r.text
        pages.append(r.json())
        assert len(pages) < 100
    return pages


def walk_while_writing(server, first: dict, writer: Writer) -> list[dict]:
    """``walk`` with ``writer`` running between pages; the writer is stopped and must not have failed."""
    writer.start()
    try:
        pages = walk(server.http, first, writer)
    finally:
        writer.stop.set()
        writer.join(DEADLINE_S)
    assert writer.error is None, writer.error
    return pages


# --- stable while others write ---------------------------------------------------------------------


def test_pages_stay_put_while_another_client_creates_and_deletes(server):
    code = f"p-{uuid.uuid4().hex[:8]}"
    stable = create_many(server, code, 110)
    doomed = create_many(server, code, 30)
    # Newest first: every resource created while paging would push offset pages back (repeats),
    # every deletion pull them forward (skips).
    search = f"Observation?code={code}&_sort=-_lastUpdated"
    reference = matches(server.get(f"{search}&_count=1000").json())
    assert sorted(reference) == sorted(stable + doomed)
    writer = Writer(server.base, lambda: observation(1.0, "Patient/p1", code), doomed)
    first = server.get(f"{search}&_count=10").json()
    pages = walk_while_writing(server, first, writer)
    assert writer.deleted and writer.created, "the writer did not write while the client paged"
    got = [i for page in pages for i in matches(page)]
    assert len(got) == len(set(got)), "an entry was repeated"
    assert set(stable) <= set(got), "an entry that existed throughout was skipped"
    assert got == [i for i in reference if i in set(got)], "not in the search's order"
    assert not set(got) & set(writer.created), "a resource created after the search appeared"
    assert all(page["total"] == len(reference) for page in pages)
    assert all(len(matches(page)) <= 10 for page in pages)
    # Deleted since the snapshot: missing from their page, never replaced by another entry.
    late = [i for i in writer.deleted if i not in got]
    assert len(got) == len(reference) - len(late)


def test_everything_pages_stay_put_while_another_client_writes(server):
    pid = server.post("Patient", {"resourceType": "Patient", "name": [{"family": "Paging"}]}).json()["id"]
    stable = create_many(server, "29463-7", 25, f"Patient/{pid}")
    doomed = create_many(server, "8867-4", 8, f"Patient/{pid}")
    whole = server.get(f"Patient/{pid}/$everything").json()
    assert "next" not in {x["relation"] for x in whole["link"]} and whole["total"] == 34
    assert snapshots(server.store) == []  # one page: no snapshot
    writer = Writer(server.base, lambda: observation(70.0, f"Patient/{pid}"), doomed)
    first = server.get(f"Patient/{pid}/$everything?_count=7").json()
    pages = walk_while_writing(server, first, writer)
    keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for p in pages for e in p["entry"]]
    assert keys[0] == ("Patient", pid) and pages[0]["entry"][0]["search"]["mode"] == "match"
    assert len(keys) == len(set(keys))
    assert {("Observation", i) for i in stable} <= set(keys)
    assert not {i for _, i in keys} & set(writer.created)
    order = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in whole["entry"]]
    assert keys == [k for k in order if k in set(keys)]
    assert all(p["total"] == 34 for p in pages)


# --- the links -------------------------------------------------------------------------------------


def test_links_agree_and_includes_summary_elements_hold_on_every_page(server):
    code = f"l-{uuid.uuid4().hex[:8]}"
    for n in range(7):  # 35 Observations over 7 patients
        server.put(f"Patient/lp{n}", {"resourceType": "Patient", "id": f"lp{n}"})
        create_many(server, code, 5, f"Patient/lp{n}")
    first = server.get(f"Observation?code={code}&_count=10&_include=Observation:subject&_elements=subject").json()
    rel = {x["relation"]: x["url"] for x in first["link"]}
    assert set(rel) == {"self", "first", "next", "last"}
    sid = query(rel["self"])[paging.PAGES]
    assert all(query(u)[paging.PAGES] == sid and u.startswith(f"{server.base}?") for u in rel.values())
    assert [query(rel[r])[paging.OFFSET] for r in ("self", "first", "next", "last")] == ["0", "0", "10", "30"]
    forward = walk(server.http, first)
    assert [len(matches(p)) for p in forward] == [10, 10, 10, 5]
    for page in forward:
        assert page["total"] == 35
        found = [e["resource"] for e in page["entry"]]
        subjects = {r["subject"]["reference"] for r in found if r["resourceType"] == "Observation"}
        included = {f"Patient/{r['id']}" for r in found if r["resourceType"] == "Patient"}
        assert included == subjects  # includes are those of this page's matches
        assert all(set(r) <= {"resourceType", "id", "meta", "subject", "status", "code"}
                   for r in found if r["resourceType"] == "Observation")  # fmt: skip
    # Backwards from last by previous: the same pages, reversed; first is page one.
    last = server.http.get(rel["last"]).json()
    assert "next" not in {x["relation"] for x in last["link"]}
    backward = [last]
    while (prev := link(backward[-1], "previous")) is not None:
        backward.append(server.http.get(prev).json())
    assert [matches(p) for p in backward] == [matches(p) for p in reversed(forward)]
    assert matches(server.http.get(link(last, "first")).json()) == matches(first)
    # Past the end: an empty page whose previous is the last page.
    beyond = server.http.get(paging.page_url(server.base, sid, 50, 10)).json()
    assert matches(beyond) == [] and query(link(beyond, "previous"))[paging.OFFSET] == "30"
    # Another page size on the same snapshot.
    assert len(matches(server.http.get(paging.page_url(server.base, sid, 5, 25)).json())) == 25


def test_single_page_searches_write_no_snapshot(server):
    code = f"s-{uuid.uuid4().hex[:8]}"
    create_many(server, code, 12)
    before = snapshots(server.store)
    one = server.get(f"Observation?code={code}&_count=12").json()
    assert one["total"] == 12 and len(matches(one)) == 12
    assert {x["relation"] for x in one["link"]} == {"self", "first", "last"}
    assert paging.PAGES not in link(one, "self")
    assert server.get(f"Observation?code={code}&_summary=count").json()["total"] == 12
    assert server.get(f"Observation?code={code}&_count=0").json()["total"] == 12
    assert server.get(f"Observation?code=nothing-{code}").json()["total"] == 0
    assert snapshots(server.store) == before
    two = server.get(f"Observation?code={code}&_count=11").json()
    assert len(snapshots(server.store)) == len(before) + 1
    assert two["total"] == 12 and len(matches(server.http.get(link(two, "next")).json())) == 1


def test_snapshot_cap_is_stated_and_total_stays_true(store):
    live = serve(store, search_snapshot_max=15)
    try:
        code = f"c-{uuid.uuid4().hex[:8]}"
        create_many(live, code, 22)
        pages = walk(live.http, live.get(f"Observation?code={code}&_count=10").json())
        assert [len(matches(p)) for p in pages] == [10, 5]
        assert all(p["total"] == 22 for p in pages)
        warnings = [e["resource"]["issue"][0]["diagnostics"] for e in pages[-1]["entry"]
                    if e["search"]["mode"] == "outcome"]  # fmt: skip
        assert warnings and "first 15" in warnings[0]
    finally:
        live.close()


# --- expiry, unknown ids, bad input -----------------------------------------------------------------


def test_expired_search_is_410_and_the_purge_removes_it(store):
    live = serve(store, search_snapshot_lifetime_s=2)
    try:
        code = f"e-{uuid.uuid4().hex[:8]}"
        create_many(live, code, 4)
        nxt = link(live.get(f"Observation?code={code}&_count=2").json(), "next")
        assert live.http.get(nxt).status_code == 200
        assert len(snapshots(store)) == 1
        deadline = time.monotonic() + DEADLINE_S
        while (r := live.http.get(nxt)).status_code == 200:
            assert time.monotonic() < deadline, "the snapshot never expired"
            time.sleep(0.05)  # polling interval: the snapshot expires on the clock, not on an event
        assert r.status_code == 410 and r.json()["resourceType"] == "OperationOutcome"
        assert purge_search_snapshots(store) == 1
        assert snapshots(store) == [] and list(store.kv_list(paging.EXPIRY_TABLE)) == []
        assert live.http.get(nxt).status_code == 410  # purged: still known as expired by its id
    finally:
        live.close()


def test_purge_keeps_live_snapshots(server):
    code = f"k-{uuid.uuid4().hex[:8]}"
    create_many(server, code, 3)
    server.get(f"Observation?code={code}&_count=1")
    server.get(f"Observation?code={code}&_count=2")
    assert paging.purge(server.store, time.time()) == 0 and len(snapshots(server.store)) == 2
    assert paging.purge(server.store, time.time() + 7200) == 2 and snapshots(server.store) == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({paging.PAGES: f"{int(time.time()) + 3600:010d}-{'A' * 22}"}, 404),  # well formed, unknown
        ({paging.PAGES: f"{int(time.time()) - 10:010d}-{'A' * 22}"}, 410),  # well formed, expired
        ({paging.PAGES: "../../etc/passwd"}, 404),
        ({paging.PAGES: ""}, 404),
        ({paging.PAGES: "x" * 5000}, 404),
        ({paging.PAGES: f"{int(time.time()) + 3600:010d}-{'A' * 22}", paging.OFFSET: "-1"}, 400),
        ({paging.PAGES: f"{int(time.time()) + 3600:010d}-{'A' * 22}", paging.OFFSET: "x"}, 400),
        ({}, 400),
    ],
)
def test_bad_paging_links_get_an_outcome_never_a_500(server, params, status):
    r = server.http.get(server.base, params=params)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_bad_page_numbers_on_a_real_snapshot(server):
    code = f"b-{uuid.uuid4().hex[:8]}"
    create_many(server, code, 3)
    sid = query(link(server.get(f"Observation?code={code}&_count=1").json(), "next"))[paging.PAGES]
    for params, status in [({"_count": "0"}, 400), ({"_count": "²"}, 400), ({"_count": "99999999999"}, 400),
                           ({paging.OFFSET: "1e3"}, 400), ({"_count": "5000"}, 200)]:  # fmt: skip
        r = server.http.get(server.base, params={paging.PAGES: sid, **params})
        assert r.status_code == status, (params, r.text)


# --- access control --------------------------------------------------------------------------------


@pytest.fixture
def auth_server(tmp_path: Path):
    live = AuthServer(make_store("sqlite", tmp_path))
    yield live
    live.close()
    live.store.close()


def test_another_client_cannot_page_my_snapshot(auth_server):
    live = auth_server
    admin = live.client_token("system/*.cruds")
    assert live.request("PUT", "Patient/p1", admin, json={"resourceType": "Patient", "id": "p1"}).status_code == 201
    for i in range(25):
        assert live.request("POST", "Observation", admin, json=observation(float(i))).status_code == 201
    mine = live.client_token("system/Observation.rs")
    theirs = live.client_token("system/Observation.rs")
    first = live.request("GET", "Observation?_count=10", mine).json()
    nxt = link(first, "next")
    assert live.http.get(nxt, headers={"Authorization": f"Bearer {mine}"}).status_code == 200
    other = live.http.get(nxt, headers={"Authorization": f"Bearer {theirs}"})
    assert other.status_code == 404 and other.json()["resourceType"] == "OperationOutcome"
    assert live.http.get(nxt).status_code == 401


def test_pages_filter_what_a_patient_scope_may_read(auth_server):
    live = auth_server
    admin = live.client_token("system/*.cruds")
    for pid in ("p1", "p2"):
        assert live.request("PUT", f"Patient/{pid}", admin, json={"resourceType": "Patient", "id": pid}).ok
    mine = []
    for i in range(12):
        patient = "p1" if i % 3 == 0 else "p2"
        body = {**observation(float(i), f"Patient/{patient}")}
        oid = live.request("POST", "Observation", admin, json=body).json()["id"]
        if patient == "p1":
            mine.append(oid)
    token = live.client_token("patient/Observation.rs", patient="p1")
    first = live.request("GET", "Observation?_count=3", token).json()
    assert "total" not in first  # the store counted every patient's: not to be told
    seen, page = [], first
    while True:
        seen += matches(page)
        assert "total" not in page
        nxt = link(page, "next")
        if nxt is None:
            break
        page = live.http.get(nxt, headers={"Authorization": f"Bearer {token}"}).json()
    assert sorted(seen) == sorted(mine)


# --- clients ---------------------------------------------------------------------------------------


def test_fhirpy_follows_the_next_links(server):
    from fhirpy import SyncFHIRClient

    code = f"f-{uuid.uuid4().hex[:8]}"
    created = create_many(server, code, 23)
    client = SyncFHIRClient(server.base, extra_headers={"Accept": "application/fhir+json"})
    found = [r.id for r in client.resources("Observation").search(code=code).limit(5)]
    assert sorted(found) == sorted(created) and len(found) == 23


# --- custom SearchParameters: reload only when they changed ------------------------------------------


def test_custom_parameters_reload_only_after_a_change(store):
    custom.load(store)
    assert custom.refresh(store) is False  # nothing changed: one look-up, no reload
    assert custom.refresh(store) is False
    code = f"shoe-{uuid.uuid4().hex[:6]}"
    parameter = {
        "resourceType": "SearchParameter", "url": f"http://relais.example/fhir/SearchParameter/{code}",
        "name": code, "status": "active", "description": "shoe size", "code": code, "base": ["Patient"],
        "type": "token", "expression": "Patient.extension.where(url = 'http://relais.example/shoe').value",
    }  # fmt: skip
    # Stored by the write path, as another process would: this process has not loaded it.
    write(store, [Change("create", "SearchParameter", resource=parameter)], SERVER)
    assert custom.refresh(store) is True
    assert custom.refresh(store) is False


def test_a_parameter_another_process_stores_after_start_is_searchable(tmp_path):
    """This server starts first; another server process then stores a SearchParameter: no restart needed."""
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    live = serve(open_store(url))
    code = f"colour-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**os.environ, "RELAIS_STORE": url, "RELAIS_AUTH": "off", "RELAIS_SCHEDULER": "off"}
    proc = spawn_relais(env, port)
    try:
        before = live.get(f"Patient?{code}=red").json()
        assert any(e["search"]["mode"] == "outcome" for e in before["entry"])  # unknown here, for now
        other = f"http://127.0.0.1:{port}/fhir"
        headers = {"Content-Type": "application/fhir+json"}
        parameter = {
            "resourceType": "SearchParameter", "url": f"http://relais.example/fhir/SearchParameter/{code}",
            "name": code, "status": "active", "description": "colour", "code": code, "base": ["Patient"],
            "type": "token", "expression": f"Patient.extension.where(url = '{COLOUR}').value",
        }  # fmt: skip
        assert requests.post(f"{other}/SearchParameter", json=parameter, headers=headers).status_code == 201
        patient = {"resourceType": "Patient", "extension": [{"url": COLOUR, "valueCode": "red"}]}
        pid = requests.post(f"{other}/Patient", json=patient, headers=headers).json()["id"]
        assert matches(live.get(f"Patient?{code}=red").json()) == [pid]
    finally:
        stop_server(proc)
        live.close()
        live.store.close()


# --- the pure part -----------------------------------------------------------------------------------


def test_snapshot_round_trip_and_checks():
    now = 1_800_000_000.0
    refs = (("Patient", "p1"), ("Observation", "o-1"), ("Encounter", "e.2"))
    snap = paging.Snapshot(paging.new_id(now + 60), "client-a", now + 60, "everything", "Patient", refs, 2, 3,
                           target="p1")  # fmt: skip
    doc = paging.encode(snap)
    assert paging.check(snap.id, doc, "client-a", now) == snap
    with pytest.raises(paging.SnapshotGone) as other:
        paging.check(snap.id, doc, "client-b", now)
    assert other.value.status == 404
    with pytest.raises(paging.SnapshotGone) as late:
        paging.check(snap.id, doc, "client-a", now + 61)
    assert late.value.status == 410
    with pytest.raises(paging.SnapshotGone) as broken:
        paging.check(snap.id, {"owner": "client-a", "type": 3}, "client-a", now)
    assert broken.value.status == 404
    assert paging.page(snap, 2, 2) == (("Encounter", "e.2"),)
    rel = {x["relation"]: x["url"] for x in paging.links("http://b", snap, 2, 2)}
    assert set(rel) == {"self", "first", "previous", "last"} and rel["last"].endswith("_getpagesoffset=2&_count=2")
    assert paging.id_expiry(snap.id) == now + 60 and paging.id_expiry("nope") is None
