"""The history conditions read, from the store: searches bounded by the patient and the window."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fhir_server.search.parser import parse
from fhir_server.search.query import SearchQuery

from .measures import Code, in_use, moment

MAX_READ = 1000  # resources one window reads at most: a window is days of one patient's measures


def _instant(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _window(resource_type: str, patient: str, date_param: str, start: float, end: float) -> SearchQuery:
    # A second either side: the exact bounds are applied to each resource's own time afterwards.
    return parse(resource_type, [("subject", f"Patient/{patient}"), (date_param, f"ge{_instant(start - 1)}"),
                                 (date_param, f"le{_instant(end + 1)}"), ("_count", str(MAX_READ))],
                 max_count=MAX_READ, strict=True)


@lru_cache(maxsize=256)
def _coded(codes: tuple[Code, ...]) -> SearchQuery:
    """combo-code: the Observation's code or a component's (systolic inside a blood pressure panel); parsed
    once per list of codes (NEWS2's seventeen cost 60 us each to split)."""
    return parse("Observation", [("combo-code", ",".join(f"{system}|{code}" for system, code in codes))],
                 strict=True)


class StoreFacts:
    """``Facts`` read from ``store``; the patient's Goals are read once per instance (one event)."""

    def __init__(self, store: Any):
        self.store = store
        self._goals: dict[str, list[dict]] = {}

    def _read(self, query: SearchQuery, start: float, end: float) -> list[dict]:
        query = dataclasses.replace(query, count=MAX_READ, offset=0, total="none", sort=())
        ids = self.store.search(query).ids
        found = []
        for stored in self.store.read_many(query.resource_type, ids):
            resource = stored.resource
            when = moment(resource) if resource else None
            if resource and in_use(resource) and when is not None and start <= when <= end:
                found.append(resource)
        return found

    def observations(self, patient: str, codes: tuple[Code, ...], start: float, end: float) -> list[dict]:
        window = _window("Observation", patient, "date", start, end)
        return self._read(dataclasses.replace(window, clauses=window.clauses + _coded(codes).clauses), start, end)

    def count(self, query: SearchQuery, patient: str, date_param: str, start: float, end: float) -> int:
        window = _window(query.resource_type, patient, date_param, start, end)
        return len(self._read(dataclasses.replace(window, clauses=window.clauses + query.clauses), start, end))

    def goals(self, patient: str) -> list[dict]:
        if patient not in self._goals:
            query = parse("Goal", [("subject", f"Patient/{patient}"), ("lifecycle-status", "active"),
                                   ("_count", "100")], strict=True)
            ids = self.store.search(dataclasses.replace(query, total="none")).ids
            self._goals[patient] = [v.resource for v in self.store.read_many("Goal", ids) if v.resource]
        return self._goals[patient]
