"""How big one search may be: beyond these the parser refuses it (``SearchError``, a 400), before any store.

Each bound keeps a search within what a backend answers in reasonable time and within SQLite's own
limits (expression depth, compound SELECTs), which otherwise surface as a 500: a chain of N
references nests N subqueries, every parameter value adds a test, every ``_sort`` key a correlated
subquery per match, every ``_include``/``_revinclude`` a look-up per page and per ``:iterate`` round.
The REST settings (``RELAIS_SEARCH_MAX_*``) set them; every other caller of the parser gets the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The largest search the parser accepts."""

    chain_depth: int = 3  # references one chain (or nested _has) follows: subject:Patient.organization.partof.name
    parameters: int = 100  # name=value pairs of one search, result parameters (_sort, _include...) included
    values: int = 500  # values of one search in all, counting each of a comma-separated list
    sort_keys: int = 10  # _sort keys
    includes: int = 20  # _include and _revinclude values (each :iterate one too)
    has_depth: int = 2  # _has in _has: SQLite's parser overflows on three (each nests three SELECTs)


# SQLite's own bounds (measured, SQLite 3.40): its parser overflows on a chain four references deep
# ("parser stack overflow"), a clause unites at most 500 values ("too many terms in compound SELECT"),
# and about 1,000 parameters pass its expression depth ("Expression tree is too large"). So the
# settings (config.py) go no higher than 3 references, 500 values and 500 parameters.


DEFAULT_LIMITS = Limits()
