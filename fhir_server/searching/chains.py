"""Chains and ``_has`` through what the caller may read: a search is no oracle on resources it cannot see.

``Patient?_id=P1&link:Patient.name=H`` answers whether P1's linked patient has a name starting with H,
whoever that patient is: for a caller who may read P1 but not the patient it links to, the chain
would spell out that patient's name one letter at a time. So a chain (or ``_has``) may only traverse
resources the caller may read. Into a type the caller sees all of, a chain stays a chain (the store
joins it, as fast as before). Into any other type, its inner query runs first, the matches the caller
may not read are dropped, and the ids left replace the chain (``resolve.inline_chains``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..search.errors import SearchTooCostly
from ..search.query import SearchQuery
from ..search.resolve import has_chains, inline_chains
from ..store.base import Store

# Matches of the inner queries of one search, read and filtered; more and the search is refused (400), as
# MongoDB's inline chains are: the same bound whoever asks, so it says nothing about one resource.
MAX_CHAIN_MATCHES = 10_000


def readable_chains(store: Store, query: SearchQuery, can_read: Callable[[dict], bool],
                    sees_all: Callable[[str], bool], max_matches: int = MAX_CHAIN_MATCHES) -> SearchQuery:  # fmt: skip
    """``query`` whose chains and ``_has`` traverse only resources the caller may read (``can_read``);
    those into a type it ``sees_all`` of stay chains.

    Raises ``SearchTooCostly`` when the inner queries that must be filtered match more than ``max_matches`` in all.
    """
    if not has_chains(query):
        return query
    readable: dict[tuple[str, str], dict] = {}
    budget = [max_matches]  # over every chain of the search: what is read, and the ids SQL then binds

    def search_ids(inner: SearchQuery) -> list[str]:
        ids = store.search(dataclasses.replace(inner, count=budget[0] + 1, offset=0, total="none", sort=())).ids
        if len(ids) > budget[0]:
            raise SearchTooCostly(f"the chained or _has criteria of this search match more than {max_matches}"
                              f" resources ({inner.resource_type}): refine them")
        budget[0] -= len(ids)
        kept = []
        for version in store.read_many(inner.resource_type, ids):
            if version.resource is not None and can_read(version.resource):
                readable[(version.resource_type, version.id)] = version.resource
                kept.append(version.id)
        return kept

    def read_many(resource_type: str, ids: list[str]) -> list[dict]:
        # Only ever asked for ids search_ids kept: read and decided once.
        return [readable[(resource_type, i)] for i in ids]

    return inline_chains(query, search_ids, read_many, lambda inner: not sees_all(inner.resource_type))
