"""HL7 v2 repetitions beyond RELAIS_MAX_REPETITIONS: refused on the ER7 text before hl7apy reads it (20,000
PID-3 repetitions took 30 s), with an AR whose ERR names the field in a code valid for the message's version."""

from __future__ import annotations

from kit.live import serve
from kit.stores import make_store

from mappers.hl7v2 import feed
from mappers.hl7v2.mapper import map_message
from tests.mappers.hl7v2_samples import ack_fields, lab_result

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


def with_pid3_repetitions(count: int, version: str = "2.5", control_id: str = "REP0001") -> str:
    message = lab_result(control_id).replace("|P|2.5", f"|P|{version}")
    pid = next(line for line in message.split("\r") if line.startswith("PID"))
    many = "~".join(f"{n:08d}^^^LAB-Y&1.2.250.1.999.1&ISO^PI" for n in range(count))
    return message.replace(pid, pid.replace("P12345^^^LAB-Y&1.2.250.1.999.1&ISO^PI", many))


def test_twenty_thousand_pid3_repetitions_are_refused_before_parsing():
    mapped = map_message(with_pid3_repetitions(20_000))
    problem = mapped.problem
    assert problem is not None and problem.ack == "AR"
    assert problem.location == "PID^1^3" and "PID-3 has 20001 repetitions" in problem.text
    assert problem.code == 207  # v2.5's table 0357 has no 104
    ack = ack_fields(mapped.ack(ack_id="A1"))
    assert ack["code"] == "AR" and ack["control_id"] == "REP0001"
    assert ack["err"].startswith("ERR||PID^1^3|207^Application internal error^HL70357")


def test_from_v27_the_code_is_value_too_long():
    mapped = map_message(with_pid3_repetitions(1500, version="2.7"))
    assert mapped.problem.code == 104
    assert "|104^Value too long^HL70357" in ack_fields(mapped.ack(ack_id="A1"))["err"]


def test_before_v25_the_location_goes_in_err_1():
    mapped = map_message(with_pid3_repetitions(1500, version="2.4"))
    err = ack_fields(mapped.ack(ack_id="A1"))["err"]
    assert err.startswith("ERR|PID^1^3^207&Application internal error&HL70357")


def test_repetitions_within_the_limit_are_mapped():
    mapped = map_message(with_pid3_repetitions(999))
    assert mapped.problem is None
    assert len(mapped.changes[0].resource["identifier"]) == 1000  # and the INS-NIR repetition


def test_an_msh_with_too_many_repetitions_gets_an_ar_without_reading_it():
    message = lab_result("REP0002").replace("|LAB-Y|RELAIS|", "|" + "~".join(["LAB-Y"] * 5000) + "|RELAIS|", 1)
    mapped = map_message(message)
    assert mapped.problem.ack == "AR" and mapped.problem.location == "MSH^1^4" and mapped.problem.code == 207
    assert ack_fields(mapped.ack(ack_id="A1"))["code"] == "AR"


def test_over_http_the_message_is_kept_and_answered_ar(tmp_path):
    live = serve(make_store("sqlite", tmp_path))
    try:
        response = live.http.post(live.origin + "/hl7v2", data=with_pid3_repetitions(20_000).encode(), headers=ER7)
        assert response.status_code == 200
        ack = ack_fields(response.text)
        assert ack["code"] == "AR" and "PID^1^3" in ack["err"]
        [(_, record)] = feed.records(live.store, rejected_only=True)
        assert record["reason"]["location"] == "PID^1^3" and record["written"] == []
        assert live.get("Patient").json()["total"] == 0
    finally:
        live.close()
