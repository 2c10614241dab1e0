"""Fixtures of the access-control tests: a temp SQLite store and the real app with authentication on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from authkit import AuthServer

from fhir_server.store import open_store


@pytest.fixture
def sqlite_store(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'auth.db'}")
    yield store
    store.close()


@pytest.fixture
def live(sqlite_store) -> Iterator[AuthServer]:
    server = AuthServer(sqlite_store)
    yield server
    server.close()
