"""PD1-4 (patient primary care provider) -> the médecin traitant: Patient.generalPractitioner and the
``general-practitioner`` of the care team. Pure."""

from __future__ import annotations

from .er7 import repetitions


def primary_care(pd1) -> list:
    """The XCNs of PD1-4 (one a doctor; one without an id number names no Practitioner and is left out)."""
    return list(repetitions(pd1, 4))
