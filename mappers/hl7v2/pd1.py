"""PD1-4 (patient primary care provider) -> the médecin traitant: Patient.generalPractitioner and the
``general-practitioner`` of the care team. Pure."""

from __future__ import annotations

from .er7 import repetitions


def primary_care(pd1) -> list:
    """The XCNs of PD1-4 (XON in v2.3 to 2.5 is organisation-like; an XCN with an id number is a person)."""
    return list(repetitions(pd1, 4))
