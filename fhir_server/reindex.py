"""$reindex: recompute the search index rows of stored resources (after a custom SearchParameter)."""

from __future__ import annotations

from .search.extract import index_values
from .store.base import Store

PAGE = 500


def reindex(store: Store, resource_types: list[str]) -> dict[str, int]:
    """Re-extract every current resource of ``resource_types``, one transaction a page; counts per type.

    No new version is made: the resources are unchanged, only what is searchable about them.
    """
    counts: dict[str, int] = {}
    for resource_type in resource_types:
        done, after = 0, None
        while page := store.scan(resource_type, after, PAGE):
            with store.transaction(durable=False) as txn:
                for stored in page:
                    txn.reindex(resource_type, stored.id, index_values(stored.resource or {}))
            done += len(page)
            after = page[-1].id
        counts[resource_type] = done
    return counts
