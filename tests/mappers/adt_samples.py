"""ADT messages built for one case each, in the shape PAM France 2.11 senders give them."""

from __future__ import annotations

_MSH = ("MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|{when}||ADT^{event}^ADT_{structure}|{control}|P|2.5^FRA^2.11|||||FRA"
        "|UNICODE UTF-8")
_STRUCTURE = {"A01": "A01", "A04": "A01", "A05": "A05", "A08": "A01", "A13": "A01", "A14": "A05", "A28": "A05",
              "A31": "A05", "A38": "A38", "A40": "A39", "A47": "A30", "A11": "A09", "A12": "A12", "A03": "A03",
              "A02": "A02", "A21": "A21", "A22": "A21", "A06": "A06", "A07": "A06"}
GP_RPPS = "10000023084"
NURSE_RPPS = "10000099999"


def pid(ipp: str = "000003", family: str = "PAT-TROIS", ins: str = "279035121518989", extra: str = "") -> str:
    ins_cx = f"~{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS" if ins else ""
    return (f"PID|1||{ipp}^^^CHU-X&000897406&N^PI{ins_cx}||{family}^DOMINIQUE^^^^^L||19790328|F|||"
            f"28 Av de Breteuil^^PARIS^^75007^FRA^H||^PRN^PH^^^^^^^^^0612345678{extra}")


def adt(event: str, *segments: str, control: str = "C1", when: str = "20240306111154") -> str:
    """An ADT message of ``event`` with MSH and EVN, then ``segments`` as given."""
    head = _MSH.format(when=when, event=event, structure=_STRUCTURE.get(event, "A01"), control=control)
    return "\r".join([head, f"EVN||{when}||||{when}", *segments])


def pv1(visit: str = "V100", patient_class: str = "I", extra: str = "") -> str:
    return f"PV1|1|{patient_class}|^^^CHU-X&000897406&M^O||||||||||||||||{visit}^^^CHU-X&000897406&M^VN{extra}"


def zbe(movement: str, start: str, action: str = "INSERT", unit: str = "Chir V", code: str = "6268") -> str:
    return f"ZBE|{movement}^CHU-X^000897406|{start}||{action}|N||{unit}^^^^^CHU-X&000897406&N^UF^^^{code}||HMS"


def rol(role: str, rpps: str, family: str, phone: str, action: str = "UC") -> str:
    return (f"ROL||{action}|{role}|{rpps}^{family}^Anne^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS"
            f"||||||||^WPN^PH^^^^^^^^^{phone}")


GP = rol("ODRP", GP_RPPS, "AGNES", "0546442221")


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with ``fields`` (number -> ER7) at their positions, the others empty."""
    last = max(fields)
    return "|".join([name, *(fields.get(n, "") for n in range(1, last + 1))])
