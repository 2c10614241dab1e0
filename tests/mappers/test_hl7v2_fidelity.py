"""Field fidelity (issue 15, part 3): XAD street lines and types, XTN numbers and emails, local times, exact
decimals. Each test fails on the mapper as it was before."""

from __future__ import annotations

import pytest
from kit.live import serve
from kit.stores import make_store

from fhir_server import fhirjson
from fhir_server.config import ConfigError, load_config
from mappers.hl7v2 import feed
from mappers.hl7v2.mapper import map_message
from tests.mappers.hl7v2_samples import HL7V2, lab_result

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
CONTACT_POINT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"


def admission(pid_11: str = "", pid_13: str = "", version: str = "2.5", evn: str = "20260115083000") -> str:
    return "\r".join([
        f"MSH|^~\\&|GAM|CHU-X|RELAIS|HUB|20260115083000||ADT^A01^ADT_A01|ADM1|P|{version}",
        f"EVN|A01|{evn}",
        f"PID|1||123^^^CHU-X^PI||DUPONT^JEAN||19600101|M|||{pid_11}||{pid_13}",
        "PV1|1|I|||||||||||||||||V42^^^CHU-X^VN",
    ])


def patient(text: str) -> dict:
    mapped = map_message(text)
    assert mapped.problem is None, mapped.problem.as_dict()
    return mapped.changes[0].resource


@pytest.mark.parametrize("version", ["2.3", "2.5", "2.7", "2.8.2"])
def test_the_street_name_of_a_sad_is_kept_and_no_subcomponent_leaks(version):
    found = patient(admission("&rue de Breteuil&28^Bat B^PARIS^^75007^FRA^H^^75107&Paris 7e&INSEE", version=version))
    [home] = found["address"]
    assert home["line"] == ["28 rue de Breteuil", "Bat B"]
    assert home["district"] == "75107" and home["use"] == "home"
    assert not any("&" in str(v) for v in home.values())


def test_the_split_address_of_the_shared_oru_keeps_its_street_name():
    text = (HL7V2 / "linuxforhealth" / "ORU-multiline-short.hl7").read_text()
    found = patient(text)
    assert ["Warden Av"] in [a.get("line") for a in found["address"]]


def test_a_mailing_address_is_postal_not_home():
    [mailing] = patient(admission("1 place de la Mairie^^LYON^^69001^FRA^M"))["address"]
    assert mailing["type"] == "postal" and "use" not in mailing


def test_a_phone_number_in_parts_is_kept_and_its_extension_is_no_email():
    found = patient(admission(pid_13="^PRN^PH^^33^1^23456789^12~^NET^Internet^jean.dupont@example.fr"
                                     "~0612345678^PRN^CP"))
    phone, email, mobile = found["telecom"]
    assert phone["system"] == "phone" and phone["value"] == "+33 1 23456789" and phone["use"] == "home"
    assert phone["extension"] == [{"url": CONTACT_POINT_EXTENSION, "valueString": "12"}]
    assert email == {"system": "email", "value": "jean.dupont@example.fr"}
    assert mobile == {"system": "phone", "value": "0612345678", "use": "mobile"}
    # an extension alone, of an equipment that says Internet, is not an email
    found = patient(admission(pid_13="^NET^Internet^^^^^45"))
    assert "telecom" not in found


def test_a_time_without_offset_is_paris_time_by_default():
    text = admission(evn="20260715083000")  # summer: +02:00
    encounter = map_message(text).changes[1].resource
    assert encounter["period"]["start"] == "2026-07-15T08:30:00+02:00"
    winter = map_message(admission(evn="20260115083000")).changes[1].resource
    assert winter["period"]["start"] == "2026-01-15T08:30:00+01:00"
    offset = map_message(admission(evn="20260115083000-0500")).changes[1].resource
    assert offset["period"]["start"] == "2026-01-15T08:30:00-05:00"


def test_relais_hl7v2_tz_names_the_senders_zone(tmp_path):
    assert load_config(environ={}).hl7v2_tz == "Europe/Paris"
    assert load_config(environ={"RELAIS_HL7V2_TZ": "America/Cayenne"}).hl7v2_tz == "America/Cayenne"
    with pytest.raises(ConfigError, match="RELAIS_HL7V2_TZ"):
        load_config(environ={"RELAIS_HL7V2_TZ": "Mars/Olympus"})
    live = serve(make_store("sqlite", tmp_path), hl7v2_tz="America/Cayenne")
    try:
        response = live.http.post(live.origin + "/hl7v2", data=admission(evn="20260115083000").encode(), headers=ER7)
        assert "MSA|AA|" in response.text
        [encounter] = live.store.scan("Encounter", None, 10)
        assert encounter.resource["period"]["start"] == "2026-01-15T08:30:00-03:00"
    finally:
        live.close()
        from mappers.hl7v2.datatypes import set_sender_zone

        set_sender_zone("Europe/Paris")


def test_obx_decimals_keep_their_digits_through_the_store(store):
    text = lab_result(obx="OBX|1|NM|2345-7^Glucose^LN||5.40|mmol/L^mmol/L^UCUM|3.90-6.10|N|||F")
    outcome = feed.receive(store, text.encode(), None, feed.Source("http", "127.0.0.1"), "x")
    assert "MSA|AA|" in outcome.answer
    [result] = store.scan("Observation", None, 10)
    written = fhirjson.dumps_text(result.resource)
    assert '"value":5.40' in written.replace(" ", "")
    assert '"low":{"value":3.90' in written.replace(" ", "")
    assert '"value":6.10' in written.replace(" ", "")
    changes = map_message(lab_result(obx="OBX|1|NM|1-8^Trace^LN||.0001|mg||||F")).changes
    [small] = [c.resource for c in changes if c.resource_type == "Observation"]
    assert small["valueQuantity"]["value"].text == "0.0001"
