"""The HL7 v2 feed: a pure mapper (ER7 in, changes and ACK out) on the shared ingest (mappers/feed.py), and its
transports (HTTP, MLLP)."""

from __future__ import annotations

from .mapper import Mapped, map_message
from .problems import Problem


def install(app, store, config) -> None:
    """Mount ``POST /hl7v2`` on ``app`` and, when RELAIS_MLLP_PORT is set, start the MLLP listener; read times
    without a UTC offset in RELAIS_HL7V2_TZ."""
    from .datatypes import set_sender_zone
    from .http import blueprint

    set_sender_zone(config.hl7v2_tz)  # RELAIS_HL7V2_TZ: a time without a UTC offset is local there
    app.register_blueprint(blueprint)
    if config.mllp_port:
        from . import mllp

        app.extensions["relais_mllp"] = mllp.start(store, config)


__all__ = ["Mapped", "Problem", "install", "map_message"]
