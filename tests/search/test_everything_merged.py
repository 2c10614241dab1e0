"""Patient/$everything of a patient that replaces others (Patient.link replaces: a merge) answers with
their compartments too, link by link, and stops at a loop."""

from __future__ import annotations

from tests.access.authkit import observation


def _patient(pid: str, *links: tuple[str, str]) -> dict:
    body: dict = {"resourceType": "Patient", "id": pid}
    if links:
        body["link"] = [{"other": {"reference": f"Patient/{other}"}, "type": kind} for kind, other in links]
    return body


def _listed(bundle: dict) -> set[tuple[str, str]]:
    return {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}


def _patients(server, *bodies: dict) -> None:
    """Each patient bare first (a link may not name what does not exist yet), then with its links."""
    for body in bodies:
        assert server.put(f"Patient/{body['id']}", {"resourceType": "Patient", "id": body["id"]}).ok
    for body in bodies:
        assert server.put(f"Patient/{body['id']}", body).ok


def test_everything_follows_replaces_links_through_a_chain_of_merges(server):
    _patients(server, _patient("a", ("replaced-by", "b")), _patient("b", ("replaces", "a"), ("replaced-by", "c")),
              _patient("c", ("replaces", "b")), _patient("other", ("seealso", "c")))
    made = {pid: server.post("Observation", observation(pid)).json()["id"] for pid in ("a", "b", "c", "other")}
    found = _listed(server.get("Patient/c/$everything").json())
    assert {("Observation", made[p]) for p in "abc"} <= found
    assert {("Patient", p) for p in "abc"} <= found and ("Observation", made["other"]) not in found
    # from the middle of the chain: what it replaces, not what replaces it
    middle = _listed(server.get("Patient/b/$everything").json())
    assert ("Observation", made["a"]) in middle and ("Observation", made["c"]) not in middle


def test_a_loop_of_replaces_links_ends(server):
    _patients(server, _patient("x", ("replaces", "y")), _patient("y", ("replaces", "x")))
    answer = server.get("Patient/x/$everything")
    assert answer.status_code == 200 and {("Patient", "x"), ("Patient", "y")} <= _listed(answer.json())
