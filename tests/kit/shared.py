"""Where the team's shared test material is: beside the repository (in CI too), or RELAIS_SHARED."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("RELAIS_SHARED", Path(__file__).resolve().parents[3] / "shared"))
EXAMPLES = SHARED / "fixtures" / "fhir-r4-examples"
