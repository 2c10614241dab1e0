"""Search errors: a bad search is the client's fault (the REST layer answers 400)."""

from __future__ import annotations


class SearchError(ValueError):
    """A search parameter, modifier or value the server cannot accept."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SearchTooCostly(SearchError):
    """A search larger than a limit (``limits.py``): refused before any store runs it."""
