"""The criteria of conditional interactions: If-None-Exist, conditional update, patch and delete, a
Bundle entry's ``ifNoneExist`` and conditional URL, conditional references (``Patient?identifier=...``).

Parsed here, the one way, for the REST API and Bundles alike; the match itself runs inside the
write transaction (``write.condition_matches``), so two writers cannot both find nothing and create.
Given the caller's access, chains and ``_has`` traverse only what it may read, as in a search
(``chains``): whether a conditional create creates must not tell what a chain found in unreadable data.
"""

from __future__ import annotations

from ..errors import FHIRError
from ..search.errors import SearchError, SearchTooCostly
from ..search.parser import parse
from ..search.query import SearchQuery
from ..store.base import Store
from .chains import readable_chains
from .service import Access


def _located(text: str, where: str | None) -> tuple[str, list[str] | None]:
    return (f"{where}: {text}", [where]) if where else (text, None)


def conditional_criteria(resource_type: str, pairs: list[tuple[str, str]], where: str | None = None, *,
                         store: Store | None = None, access: Access | None = None) -> SearchQuery:  # fmt: skip
    """The query of a conditional interaction's criteria (strict: an unknown parameter is a 400).

    Criteria that select nothing (none given, or only ``_format``/``_pretty``) are a 412: a
    conditional delete or update must never mean "every resource of the type". ``where`` names the
    Bundle element the criteria came from, for the OperationOutcome. With ``store`` and the caller's
    ``access``, chains into types the caller does not see all of are replaced by the ids of the readable
    resources they match (``readable_chains``); those into types it sees all of stay chains.
    """
    pairs = [(k, v) for k, v in pairs if not k.startswith("_format") and k != "_pretty"]
    query = None
    if pairs:
        try:
            query = parse(resource_type, pairs, strict=True)
        except SearchError as exc:
            text, expression = _located(str(exc), where)
            raise FHIRError(400, text, code="invalid", expression=expression) from None
    if query is None or not query.clauses:
        text, expression = _located(
            "a conditional interaction needs search criteria" if where else "A conditional interaction needs search"
            " criteria", where)  # fmt: skip
        raise FHIRError(412, text, code="invalid", expression=expression)
    if store is None or access is None:
        return query
    try:
        return readable_chains(store, query, access.can_read, access.sees_all)
    except SearchError as exc:
        text, expression = _located(str(exc), where)
        code = "too-costly" if isinstance(exc, SearchTooCostly) else "invalid"
        raise FHIRError(400, text, code=code, expression=expression) from None
