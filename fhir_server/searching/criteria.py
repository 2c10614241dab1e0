"""The criteria of conditional interactions: If-None-Exist, conditional update, patch and delete, a
Bundle entry's ``ifNoneExist`` and conditional URL, conditional references (``Patient?identifier=...``).

Parsed here, the one way, for the REST API and Bundles alike; the match itself runs inside the
write transaction (``write.condition_matches``), so two writers cannot both find nothing and create.
"""

from __future__ import annotations

from ..errors import FHIRError
from ..search.errors import SearchError
from ..search.parser import parse
from ..search.query import SearchQuery


def _located(text: str, where: str | None) -> tuple[str, list[str] | None]:
    return (f"{where}: {text}", [where]) if where else (text, None)


def conditional_criteria(resource_type: str, pairs: list[tuple[str, str]], where: str | None = None) -> SearchQuery:
    """The query of a conditional interaction's criteria (strict: an unknown parameter is a 400).

    Criteria that select nothing (none given, or only ``_format``/``_pretty``) are a 412: a
    conditional delete or update must never mean "every resource of the type". ``where`` names the
    Bundle element the criteria came from, for the OperationOutcome.
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
    return query
