"""Random searches built from the data's own values: SQLite, MongoDB and the matcher must agree.

A fixed seed keeps the run reproducible; values come from the Synthea resources' index rows, so
most searches match something. Sorted searches must also come back in the same order on both stores.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from kit.stores import close_store, make_store, put_all
from search_fixtures import synthea_linked

from fhir_server.search.dates import format_instant
from fhir_server.search.errors import SearchError
from fhir_server.search.extract import index_values
from fhir_server.search.matcher import matches
from fhir_server.search.parser import parse
from fhir_server.search.query import SearchQuery
from fhir_server.search.registry import SearchParam, get_registry

PREFIXES = ["", "", "eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"]


def _value(rng: random.Random, rows: list, sp: SearchParam) -> str:
    if not rows:
        return rng.choice(["x", "1", "2015", "a|b"])
    row = rng.choice(rows)
    pre = rng.choice(PREFIXES)
    kind = sp.type
    if kind == "token":
        return rng.choice([f"{row.system or ''}|{row.code}", row.code or "x", f"{row.system}|"])
    if kind == "string":
        return (row.code or "x")[: rng.randint(1, 6)]
    if kind == "date":
        return pre + format_instant(row.low)[: rng.choice([4, 7, 10, 19])]
    if kind == "reference":
        return rng.choice([f"{row.system}/{row.code}", row.code or "x"])
    if kind == "quantity":
        return f"{pre}{round(row.low or 0, rng.randint(0, 2))}" + rng.choice(
            ["", f"|{row.system}|{row.code}", f"||{row.code}"]
        )
    if kind == "uri":
        return row.code or "x"
    if kind == "composite" and row.low is not None:
        return f"{row.system}|{row.code}${pre}{round(row.low, 1)}"
    return "x"


def _queries(count: int, seed: int) -> list[SearchQuery]:
    rng = random.Random(seed)
    resources = synthea_linked()
    values: dict[tuple[str, str], list] = {}
    for r in resources:
        for row in index_values(r):
            if row.kind in ("token", "string", "date", "reference", "quantity", "uri", "composite"):
                values.setdefault((r["resourceType"], row.param), []).append(row)
    types = sorted({r["resourceType"] for r in resources})
    out: list[SearchQuery] = []
    while len(out) < count:
        rtype = rng.choice(types)
        params = get_registry().params_for(rtype)
        pairs = []
        for _ in range(rng.randint(1, 3)):
            name = rng.choice(sorted(params))
            sp = params[name]
            modifier = {"token": ["", "", ":not", ":missing"], "string": ["", ":contains", ":exact"]}.get(sp.type, [""])
            mod = rng.choice(modifier)
            value = (
                rng.choice(["true", "false"]) if mod == ":missing" else _value(rng, values.get((rtype, name), []), sp)
            )
            pairs.append((name + mod, value))
        if rng.random() < 0.3:
            pairs.append(("_sort", rng.choice(["-_lastUpdated", "date", "-date", "_id"])))
        try:
            out.append(parse(rtype, pairs, default_count=1000, max_count=1000))
        except SearchError:
            continue
    return out


QUERIES = _queries(150, seed=20261123)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    tmp: Path = tmp_path_factory.mktemp("random")
    made = {kind: make_store(kind, tmp) for kind in ("sqlite", "mongomock")}
    for st in made.values():
        put_all(st, synthea_linked())
    yield made
    for st in made.values():
        close_store(st)


def _expected(query: SearchQuery) -> list[str]:
    resources = synthea_linked()
    by_key = {(r["resourceType"], r["id"]): r for r in resources}

    def find(q: SearchQuery):
        return [r for r in resources if matches(q, r, lambda t, i: by_key.get((t, i)), find=find)]

    return sorted(r["id"] for r in find(query))


def test_the_random_searches_are_varied() -> None:
    kinds = {p.kind for q in QUERIES for clause in q.clauses for p in clause}
    assert kinds >= {"token", "string", "date", "reference", "quantity"}
    assert sum(1 for q in QUERIES if _expected(q)) > len(QUERIES) // 5


@pytest.mark.parametrize("index", range(len(QUERIES)))
def test_stores_agree_with_the_matcher(stores, index: int) -> None:
    query = QUERIES[index]
    expected = _expected(query)
    answers = {name: st.search(query).ids for name, st in stores.items()}
    for name, ids in answers.items():
        assert sorted(ids) == expected, name
    if query.sort:
        assert answers["sqlite"] == answers["mongomock"]
