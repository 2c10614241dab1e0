"""Small messages of each care message type the feed maps beyond ADT and ORU, one case each (written for
these tests after the shapes of LinuxForHealth's converter samples and French usage: IDNPS, CIP)."""

from __future__ import annotations

PID = "PID|1||P100^^^CHU-X&1.2.250.1.999.1&ISO^PI||MARTIN^HELENE^^^^^L||19550412|F"
PV1 = "PV1|1|O|CARDIO||||||||||||||||V100^^^CHU-X&1.2.250.1.999.1&ISO^VN"
HODA = "801234567897^HODA^ADAM^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"


def message(kind: str, control_id: str, *segments: str, version: str = "2.5") -> str:
    """An ER7 message from CHU-X: MSH and ``segments``, separated by CR."""
    return "\r".join([f"MSH|^~\\&|APP|CHU-X|RELAIS|HUB|20261120081500||{kind}|{control_id}|P|{version}", *segments])


def orm(control_id: str = "ORM1", control: str = "NW", status: str = "SC") -> str:
    return message("ORM^O01^ORM_O01", control_id, PID, PV1,
                   f"ORC|{control}|PL123^CHU-X|FL456^LAB||{status}||^^^20261121080000^^R||20261120081000|||{HODA}",
                   "OBR|1|PL123^CHU-X|FL456^LAB|2345-7^Glucose^LN|R||20261121080000||||||||||||||||||||||||"
                   "E11.9^Diabète de type 2^I10",
                   "NTE|1||à jeun")


def oml(control_id: str = "OML1", control: str = "NW") -> str:
    return message("OML^O21^OML_O21", control_id, PID, PV1, f"ORC|{control}|PL124^CHU-X",
                   "OBR|1|PL124^CHU-X||718-7^Hémoglobine^LN")


def vxu(control_id: str = "VXU1", action: str = "A") -> str:
    return message("VXU^V04^VXU_V04", control_id, PID, "ORC|RE||4242546^NameSpaceID",
                   "RXA|0|1|20140701041038|20140701041038|48^HPV, quadrivalent^CVX|0.5|ml^MilliLiter^UCUM||"
                   f"00^New record^NIP001|{HODA}|||||Z0860BB|20160807|MSD^Merck^MVX|||CP|{action}",
                   "RXR|C28161^Intramuscular^NCIT|LA^Left arm^HL70163", version="2.6")


def rde(control_id: str = "RDE1", control: str = "NW") -> str:
    return message("RDE^O11^RDE_O11", control_id, PID, PV1, f"ORC|{control}|RX100^CHU-X|||||||20261120081000|||{HODA}",
                   "TQ1|||||||20261120|20261130",
                   "RXE|^^^20261120^^R|3400936381215^METFORMINE 500MG CPR^CIP|1||CPR^comprimé^HL70292|CPR|"
                   "^Un comprimé matin et soir|||60|CPR^comprimé|2",
                   "RXR|PO^Oral^HL70162")


def rds(control_id: str = "RDS1") -> str:
    return message("RDS^O13^RDS_O13", control_id, PID, "ORC|RE|RX100^CHU-X|DISP9^PHARMA",
                   "RXD|1|3400936381215^METFORMINE 500MG CPR^CIP|20261121100000|60|CPR^comprimé|CPR|RXN77|1|"
                   f"^Délivré en officine|{HODA}",
                   "RXR|PO^Oral^HL70162")


def ppr(control_id: str = "PPR1", trigger: str = "PC1", action: str = "AD", life_cycle: str = "A^Active") -> str:
    return message(f"PPR^{trigger}^PPR_PC1", control_id, PID, PV1,
                   f"PRB|{action}|20261120|I10^Hypertension essentielle^I10|PRB77^CHU-X||||||||||{life_cycle}"
                   "||20200115")


def siu(control_id: str = "SIU1", trigger: str = "S12", start: str = "20261125143000") -> str:
    return message(f"SIU^{trigger}^SIU_S12", control_id,
                   "SCH|APT1^CHU-X|APT1F^CHU-X||||PATCANC^Annulé par le patient|CONSULT^Consultation^LOCAL|"
                   "FOLLOWUP^Suivi^HL70277|30|MIN|||||||||||||||Booked",
                   PID, PV1, "RGS|1", f"AIS|1||CARDIO^Consultation cardiologie^LOCAL|{start}|||30|MIN",
                   f"AIP|1||{HODA}|CARD^Cardiologue", "AIL|1||CARDIO^B12^1^CHU-X")


def ref(control_id: str = "REF1", status: str = "P^Pending") -> str:
    return message("REF^I12^REF_I12", control_id,
                   f"RF1|{status}|R^Routine|CARDIO^Avis cardiologique^LOCAL||O|REF55^CHU-X|20261120",
                   "PRD|RP|HODA^ADAM|||||801234567897^IDNPS", "PRD|RT|BLUE^EVA|||||80123456780^RPPS", PID)


def billing(kind: str = "BAR^P01^BAR_P01", control_id: str = "BAR1") -> str:
    return message(kind, control_id, "EVN|P01|20261120081500", PID)
