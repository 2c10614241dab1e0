"""Serve the app with werkzeug (threaded): what `relais serve` and `python app.py` run.

It is handed the app factory rather than importing it, so that ``app.py`` can start a server
without importing the command line that imports ``app.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .config import Config, ConfigError, load_config


def configure_logging() -> None:
    """INFO lines with their time and logger, as every command of the server prints them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every run of every job at INFO


def serve(create_app: Callable[[Config], Any], host: str | None = None, port: int | None = None) -> int:
    """Build the app from RELAIS_* variables (``host``/``port`` override theirs) and serve it until interrupted."""
    from werkzeug.serving import make_server

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    config = load_config(**overrides)
    if not os.environ.get("RELAIS_BASE_URL"):
        # Without an explicit public URL, links point at where this process listens.
        config = dataclasses.replace(config, base_url=f"http://{config.host}:{config.port}/fhir")
    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True)
    print(f"Relais serving the FHIR API at {config.base_url} (store: {config.store})", flush=True)
    if config.auth:
        import auth

        print(auth.startup_help(config), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(create_app: Callable[[Config], Any]) -> NoReturn:
    """``python app.py``: serve, or exit non-zero with one line on a configuration error."""
    configure_logging()
    try:
        sys.exit(serve(create_app))
    except ConfigError as exc:
        print(f"relais: {exc}", file=sys.stderr)
        sys.exit(2)
