"""Fixtures: a store on each backend, and the real app served on a loopback port (helpers: ``kit/``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.live import LiveServer, serve
from kit.shared import SHARED
from kit.stores import BACKENDS, close_store, make_store


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
    close_store(s)


def _settings(request: pytest.FixtureRequest) -> dict:
    """Config overrides a test module asks of its servers (its ``SERVER_SETTINGS``)."""
    return getattr(request.module, "SERVER_SETTINGS", {})


@pytest.fixture
def server(store, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    live = serve(store, **_settings(request))
    yield live
    live.close()


@pytest.fixture
def sqlite_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    live = serve(make_store("sqlite", tmp_path), **_settings(request))
    yield live
    live.close()
