"""Fixtures: a store on each backend, and the real app served on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import (  # noqa: F401  (re-exported for test modules that import from conftest)
    BACKENDS,
    EXAMPLES,
    SHARED,
    LiveServer,
    free_port,
    make_store,
    observation,
    serve,
)


def pytest_configure(config: pytest.Config) -> None:
    """Stop at once, saying where to put it, when the team's shared material is not beside the clone.

    Without it, test modules that read its fixtures at import fail during collection with a bare
    StopIteration or IndexError, which names neither the folder nor RELAIS_SHARED.
    """
    if not (SHARED / "fixtures").is_dir():
        pytest.exit(
            f"shared test material not found at {SHARED}/fixtures: clone Relais beside the team's shared/ "
            "folder, or set RELAIS_SHARED to it",
            returncode=4,
        )


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path):
    s = make_store(request.param, tmp_path)
    yield s
    if request.param == "mongodb":
        s.client.drop_database(s.db.name)
    s.close()


@pytest.fixture
def server(store) -> Iterator[LiveServer]:
    live = serve(store)
    yield live
    live.close()


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[LiveServer]:
    live = serve(make_store("sqlite", tmp_path))
    yield live
    live.close()
