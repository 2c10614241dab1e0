"""Search: the registry (R4 definitions as data), extraction, the parser to the IR, the in-memory matcher."""

from .errors import SearchError
from .extract import index_values, warm_up
from .matcher import matches
from .parser import parse, parse_criteria
from .query import IndexRow, Predicate, SearchQuery, SortKey
from .registry import get_registry

__all__ = [
    "IndexRow",
    "Predicate",
    "SearchError",
    "SearchQuery",
    "SortKey",
    "get_registry",
    "index_values",
    "matches",
    "parse",
    "parse_criteria",
    "warm_up",
]
