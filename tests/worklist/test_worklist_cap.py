"""Task/$worklist past RELAIS_SEARCH_SNAPSHOT_MAX: the oldest open Tasks are ranked, and no total is claimed."""

from __future__ import annotations

from tests.worklist.worklist_data import ward

SERVER_SETTINGS = {"search_snapshot_max": 3}


def test_past_the_cap_the_oldest_are_ranked_and_no_total_is_claimed(sqlite_server):
    for resource in ward():
        assert sqlite_server.put(f"{resource['resourceType']}/{resource['id']}", resource).status_code in (200, 201)
    bundle = sqlite_server.get("Task/$worklist").json()
    assert "total" not in bundle
    # The three oldest open Tasks are read (t-other 01-01 07:00, which is no triage alert, t-routine-old
    # 08:00, t-asap 09:00), the triage alerts among them ranked.
    assert [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"] == [
        "t-asap", "t-routine-old"]
