"""The care messages this feed maps beyond ADT, each by its own module: message code -> (triggers, mapper)."""

from __future__ import annotations

from collections.abc import Callable

from . import mdm, orders, oru, ppr, rde, rds, ref, siu, vxu
from .changes import Changes
from .context import Context

MAPPERS: dict[str, tuple[tuple[str, ...], Callable[[Context], Changes]]] = {
    "ORU": (("R01",), oru.changes),  # results, and CI-SIS documents -> DiagnosticReport, DocumentReference
    "MDM": (("T02", "T04", "T10"), mdm.changes),  # documents -> DocumentReference
    "ORM": (("O01",), orders.changes),  # orders -> ServiceRequest
    "OML": (("O21",), orders.changes),  # laboratory orders -> ServiceRequest
    "REF": (("I12",), ref.changes),  # referrals -> ServiceRequest
    "VXU": (("V04",), vxu.changes),  # vaccinations -> Immunization
    "RDE": (("O11",), rde.changes),  # pharmacy orders -> MedicationRequest
    "RDS": (("O13",), rds.changes),  # dispenses -> MedicationDispense
    "PPR": (("PC1", "PC2", "PC3"), ppr.changes),  # problems -> Condition
    "SIU": (("S12", "S13", "S14", "S15"), siu.changes),  # appointments -> Appointment
}
BILLING = ("BAR", "DFT")  # refused: AR 200
