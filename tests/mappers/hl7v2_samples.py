"""The shared HL7 v2 samples (read as they are, never edited) and small messages built for one case each."""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from kit.shared import SHARED

HL7V2 = SHARED / "fixtures" / "hl7v2"
PAM = sorted((HL7V2 / "ans-pam-fr").glob("*.er7"))
ORU = sorted((HL7V2 / "linuxforhealth").glob("ORU*.hl7"))
PYTHON_HL7 = sorted((HL7V2 / "python-hl7").glob("*.hl7"))
LINUXFORHEALTH_ADT = sorted((HL7V2 / "linuxforhealth").glob("sample_*.hl7"))
INS_NIR = "urn:oid:1.2.250.1.213.1.4.10"
# what a hospital feed writes: ADT's PAM France segments, and every ORU a DiagnosticReport, documents a
# DocumentReference and its Binary
FULL_SCOPES = " ".join(f"system/{t}.cu" for t in (
    "Patient", "Encounter", "Observation", "DiagnosticReport", "DocumentReference", "Binary", "Practitioner",
    "Organization", "ServiceRequest", "Immunization", "MedicationRequest", "MedicationDispense", "Condition",
    "Appointment", "CareTeam", "Consent", "AllergyIntolerance", "Procedure", "RelatedPerson", "Coverage"))


def read(path) -> bytes:
    return path.read_bytes()


GLUCOSE = "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L^mmol/L^UCUM|3.9-6.1|N|||F|||20261120080000+0100"


def lab_result(control_id: str = "LAB0001", obx: str = GLUCOSE, patient_id: str = "P12345",
               filler: str | None = None) -> str:
    """An ORU^R01 from a lab with one OBR (filler order number FIL-<control id> unless given) and ``obx``."""
    return "\r".join([
        f"MSH|^~\\&|LABSYS|LAB-Y|RELAIS|HUB|20261120081500||ORU^R01^ORU_R01|{control_id}|P|2.5",
        f"PID|1||{patient_id}^^^LAB-Y&1.2.250.1.999.1&ISO^PI~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||"
        "MARTIN^HELENE^^^^^L||19550412|F",
        f"OBR|1|ORD1^LABSYS|{filler or 'FIL-' + control_id}^LAB-Y|24331-1^Lipid panel^LN|||20261120075500",
        obx,
    ])


def ack_fields(ack: str) -> dict:
    """MSA-1, MSA-2, the ERR segment and the MSH of an ACK, read back with hl7apy."""
    message = parse_message(ack, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    errs = [s for s in message.children if s.name == "ERR"]
    return {
        "code": message.msa.msa_1.to_er7(),
        "control_id": message.msa.msa_2.to_er7(),
        "err": errs[0].to_er7() if errs else None,
        "sending": message.msh.msh_3.to_er7(),
        "receiving": message.msh.msh_5.to_er7(),
        "type": message.msh.msh_9.to_er7(),
    }
