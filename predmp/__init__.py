"""The pre-DMP: a draft shared record built from what the platform knows, validated by a doctor, and sent
to the national record (ANS PDSm 3.1.1, IHE MHD ITI-65).

- ``gather`` reads the facts, ``document`` makes the FHIR document, ``drafts`` stores it (``$pre-dmp``);
- ``validation`` locks it and queues its export (``$validate-pre-dmp``);
- ``mhd`` makes the ITI-65 Bundle, ``pdsm`` checks it, ``export`` sends it (outbox kind ``dmp-export``).
Every write is made through the write path by the internal actor ``relais-predmp``.
"""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    """Mount the two operations under /fhir (before the generic routes match them)."""
    from .operation_build import build
    from .operation_validate import validate

    app.register_blueprint(build, url_prefix="/fhir")
    app.register_blueprint(validate, url_prefix="/fhir")
