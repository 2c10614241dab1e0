"""Every message gets a valid ACK for its version, over HTTP and MLLP, and nothing is lost (issue 15, part 1).

The ACKs are read back with hl7apy's strict validation at their own version (2.7.1 through hl7apy's 2.7).
"""

from __future__ import annotations

import re

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_segments
from kit.live import serve
from kit.ports import free_port
from kit.stores import make_store

from mappers import feed as ingest
from mappers.hl7v2 import feed
from mappers.hl7v2.ack import acknowledge
from mappers.hl7v2.er7 import SUPPORTED_VERSIONS, Header, library_version
from mappers.hl7v2.problems import Problem
from tests.mappers.hl7v2_samples import HL7V2, lab_result
from tests.mappers.mllpkit import Sender

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
CORPUS = sorted(p for p in HL7V2.rglob("*") if p.is_file() and p.name != "LICENSE")
NASTY = "a | b ^ c \\ d & e ~ f # g \x00 h\r\nMSH|^~\\&|i" * 12


def strict(ack: str) -> Message:
    """``ack`` parsed and validated by hl7apy at the version its MSH-12 names (STRICT: unknown or misplaced
    fields, wrong data types and missing required segments raise)."""
    assert "\n" not in ack and "\x00" not in ack
    fields = ack.split("\r")[0].split("|")
    version = fields[11]
    library = library_version(version)
    message = Message("ACK", version=library, validation_level=VALIDATION_LEVEL.STRICT)
    message.children = parse_segments(ack.replace(f"|{version}\r", f"|{library}\r", 1), library,
                                      validation_level=VALIDATION_LEVEL.STRICT)
    message.validate()
    if library != version:
        message.msh.msh_12.vid_1 = version
    return message


def part(segment, number: int) -> str:
    """Field ``number`` of ``segment`` as ER7, found by position (ERR-1 is absent from hl7apy's v2.8)."""
    found = [c for c in segment.children if c.name == f"{segment.name}_{number}"]
    return found[0].to_er7() if found else ""


def verdict(ack: str) -> tuple[str, str, str]:
    """(MSA-1, the HL7 error code, the version) of a strictly valid ACK."""
    message = strict(ack)
    version = message.msh.msh_12.to_er7()
    errs = [s for s in message.children if s.name == "ERR"]
    code = ""
    if errs:
        code = part(errs[0], 1).split("^")[3].split("&")[0] if version in ("2.3", "2.3.1", "2.4") \
            else part(errs[0], 3).split("^")[0]
    return message.msa.msa_1.to_er7(), code, version


# ---- the ACK itself, per version ---------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_each_version_gets_msa_and_err_as_it_defines_them(version):
    header = Header(sending_application="LAB^1.2.3^ISO", sending_facility="SITE", control_id="C-" + "9" * 40,
                    message_code="ORU", trigger="R01", processing_id="P", version=version)
    accepted = strict(acknowledge(header, "AA", ack_id="A1"))
    assert accepted.msa.msa_1.to_er7() == "AA" and accepted.msa.msa_2.to_er7() == header.control_id
    assert accepted.msh.msh_5.to_er7() == "LAB^1.2.3^ISO" and accepted.msh.msh_12.to_er7() == version
    assert accepted.msh.msh_9.to_er7() == ("ACK^R01" if version == "2.3" else "ACK^R01^ACK")
    problem = Problem(102, "OBX-5 " + NASTY, "OBX^2^5")
    ack = acknowledge(header, "AE", problem, ack_id="A2")
    message = strict(ack)
    [err] = [s for s in message.children if s.name == "ERR"]
    if version in ("2.3", "2.3.1", "2.4"):
        assert part(err, 1) == "OBX^2^5^102&Data type error&HL70357"
        assert message.msa.msa_6.to_er7() == "102^Data type error^HL70357"
    else:
        assert ack.split("\r")[2].startswith("ERR||OBX^2^5|102^")  # ERR-1 empty (withdrawn in v2.8)
        assert (part(err, 2), part(err, 3), part(err, 4)) == ("OBX^2^5", "102^Data type error^HL70357", "E")
        assert part(err, 8).startswith("OBX-5 a \\F\\ b \\S\\ c \\E\\ d \\T\\ e \\R\\ f ")
    text = part(message.msa, 3)
    assert (text == "") == (version in ("2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"))  # MSA-3 withdrawn in v2.7

def test_the_ack_written_without_hl7apy_is_valid_too():
    from mappers.hl7v2.ack import _plain  # what acknowledge falls back to should hl7apy ever refuse a value

    for version in SUPPORTED_VERSIONS:
        header = Header(sending_application="LAB", control_id="C1", message_code="ORU", trigger="R01",
                        processing_id="P", version=version)
        assert strict(_plain(header, "AR", Problem(200, NASTY, "MSH^1^9", "AR"), "A3", "20261206101010"))


def test_a_message_without_a_readable_header_is_answered_in_v25():
    message = strict(acknowledge(None, "AR", Problem(100, "the message is empty", "", "AR"), ack_id="X"))
    assert message.msh.msh_12.to_er7() == "2.5" and message.msa.msa_1.to_er7() == "AR"


# ---- the whole corpus, in every version, over both transports ------------------------------------------


def reversioned(raw: bytes, version: str, tag: str) -> bytes:
    """The message with MSH-12.1 set to ``version`` and MSH-10 made unique (``tag``)."""
    text = raw.decode("utf-8", "replace")
    lines = re.split(r"\r\n|\n|\r", text)
    out = []
    for line in lines:
        if line.startswith("MSH") and len(line) > 8:
            separator, component = line[3], line[4]
            parts = line.split(separator)
            if len(parts) > 11:
                parts[11] = component.join([version, *parts[11].split(component)[1:]])
                parts[9] = f"{parts[9]}-{tag}"
            line = separator.join(parts)
        out.append(line)
    return "\r".join(out).encode()


def broken(version: str) -> dict[str, bytes]:
    """Damaged messages of ``version``: each must be answered, none may be stored."""
    good = lab_result(control_id=f"B-{version}").replace("|2.5", f"|{version}", 1)
    return {
        "truncated": good[: len(good) // 2].encode(),
        "msh-cut": f"MSH|^~\\&|LABSYS|LAB-Y|||2026||ORU^R01|T-{version}".encode(),
        "msh-short": b"MSH|",
        "no-msh": ("PID|1||X\r" + good).encode(),
        "bad-encoding": good.replace("MSH|^~\\&", "MSH|^^\\&", 1).encode(),
        "hash-separator": good.replace("MSH|^~\\&", "MSH|#~\\&", 1).replace(f"B-{version}", f"H-{version}").encode(),
        "binary": bytes(range(256)) * 3,
        "binary-after-msh": good.encode()[:60] + bytes(range(256)),
        "empty": b"",
        "blank": b"\r\n\r\n",
        "nul-in-name": good.replace("MARTIN", "MAR\x00\x00TIN").replace(f"B-{version}", f"N-{version}").encode(),
        "huge": lab_result(control_id=f"G-{version}", obx="OBX|1|TX|11526-1^Note^LN||" + "x" * 300_000
                           + "||||||F").replace("|2.5", f"|{version}", 1).encode(),
        "unknown-version": good.replace(f"|{version}", "|9.9", 1).encode(),
        "latin-1": good.replace("MARTIN", "MARTÏN").encode("latin-1"),
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    store = make_store("sqlite", tmp_path_factory.mktemp("acks"), durable=False)
    mllp_port = free_port()
    server = serve(store, mllp_port=mllp_port, mllp_max_bytes=200_000)
    sender = Sender(mllp_port, timeout_s=60)
    yield server, sender
    sender.close()
    server.app.extensions["relais_mllp"].close()
    server.close()
    store.close()


def _answers(live, messages: dict[str, bytes]) -> dict[str, tuple[str, str, str]]:
    server, sender = live
    answers = {}
    for name, raw in messages.items():
        answers[f"mllp {name}"] = verdict(sender.send(raw))
        response = server.http.post(server.origin + "/hl7v2", data=raw, headers=ER7)
        assert response.status_code == 200, (name, response.text[:300])
        answers[f"http {name}"] = verdict(response.text)
    return answers


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_shared_corpus_in_every_version_gets_a_valid_ack(live, version):
    messages = {}
    for path in CORPUS:
        raw = path.read_bytes()
        messages[f"{path.parent.name}/{path.name}"] = reversioned(raw, version, f"{version}-{path.stem}")
    answers = _answers(live, messages)
    assert set(answers) == {f"{t} {n}" for t in ("mllp", "http") for n in messages}
    for name, (code, _, acked) in answers.items():
        assert code in ("AA", "AE", "AR"), name
        # the ACK is in the message's version whenever its MSH could be read
        assert acked in (version, "2.5"), name
    assert answers["mllp ans-pam-fr/admission.er7"][0] == "AA"
    assert answers["http linuxforhealth/ORU-multiline-short.hl7"][0] == "AA"


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_broken_messages_in_every_version_get_a_valid_ack_and_store_nothing(live, version):
    server, _ = live
    before = len(server.store.scan("Patient", None, 10_000))
    answers = _answers(live, broken(version))
    for name, (code, _, _) in answers.items():
        assert code in ("AE", "AR") or name.endswith(("huge", "latin-1")), (name, code)
    assert answers["http nul-in-name"][:2] == ("AE", "102")
    assert answers["mllp hash-separator"][:2] == ("AR", "102")
    assert answers["mllp huge"][0] == "AR" and answers["http huge"][0] == "AA"  # past RELAIS_MLLP_MAX_BYTES
    assert answers["http latin-1"][0] == "AA"
    names = [n for p in server.store.scan("Patient", None, 10_000) for n in p.resource.get("name", [])]
    assert not any("\x00" in (n.get("family") or "") for n in names)
    assert len(server.store.scan("Patient", None, 10_000)) <= before + 1  # MARTIN, from the huge and latin-1
    # every message was recorded, with its outcome: none stays "processing"
    records = [doc for _, doc in feed.records(server.store)]
    assert all(doc["state"] == "done" and doc["outcome"] in ("AA", "AE", "AR") for doc in records)


# ---- control characters, '#', failures and what is recorded --------------------------------------------


def test_control_characters_in_a_field_are_refused_naming_the_field(store):
    source = feed.Source("http", "127.0.0.1", None)
    named = lab_result(control_id="NUL1").replace("MARTIN^HELENE", "PAT\x00\x00TROIS^HELENE")
    outcome = feed.receive(store, named.encode(), None, source, "http://x/fhir")
    code, error, _ = verdict(outcome.answer)
    assert (code, error) == ("AE", "102")
    assert outcome.record["reason"]["location"] == "PID^1^5" and "PID-5" in outcome.record["reason"]["text"]
    escaped = lab_result(control_id="NUL2", obx="OBX|1|ST|8251-1^Note^LN||fine\\X0007\\bell||||||F")
    outcome = feed.receive(store, escaped.encode(), None, source, "http://x/fhir")
    assert verdict(outcome.answer)[:2] == ("AE", "102") and outcome.record["reason"]["location"] == "OBX^1^5"
    in_header = lab_result(control_id="NUL\x013")
    outcome = feed.receive(store, in_header.encode(), None, source, "http://x/fhir")
    assert verdict(outcome.answer)[:2] == ("AE", "102") and outcome.record["reason"]["location"] == "MSH^1^10"
    tabbed = lab_result(control_id="TAB1", obx="OBX|1|ST|8251-1^Note^LN||a\tb||||||F")
    assert verdict(feed.receive(store, tabbed.encode(), None, source, "http://x/fhir").answer)[0] == "AA"
    assert store.scan("Patient", None, 10)[0].resource["name"][0]["family"] == "MARTIN"
    assert len(store.scan("Patient", None, 10)) == 1


def test_hash_as_component_separator_is_refused_with_its_reason(store):
    source = feed.Source("http", "127.0.0.1", None)
    for text in (lab_result(control_id="H1").replace("MSH|^~\\&", "MSH|#~\\&", 1),
                 lab_result(control_id="H2").replace("MSH|^~\\&", "MSH|#~\\&", 1).replace("^", "#")):
        outcome = feed.receive(store, text.encode(), None, source, "http://x/fhir")
        assert verdict(outcome.answer)[:2] == ("AR", "102")
        reason = outcome.record["reason"]
        assert reason["location"] == "MSH^1^2" and "'#'" in reason["text"] and "not supported" not in reason["text"]


def test_v271_and_v28_messages_are_read_and_answered(store):
    source = feed.Source("http", "127.0.0.1", None)
    for version in ("2.7.1", "2.8", "2.8.2"):
        good = lab_result(control_id=f"V{version}").replace("|2.5", f"|{version}", 1)
        assert verdict(feed.receive(store, good.encode(), None, source, "x").answer) == ("AA", "", version)
        bad = lab_result(control_id=f"W{version}", obx="OBX|1|NM|2345-7^Glucose^LN||five||||||F").replace(
            "|2.5", f"|{version}", 1)
        assert verdict(feed.receive(store, bad.encode(), None, source, "x").answer) == ("AE", "102", version)


def _failing_feed(fail: list[str]):
    """The HL7 v2 feed with an answer that fails while ``fail`` says so (a partner's bug, not ours)."""
    def answering(problem):
        if fail:
            raise RuntimeError(fail[0])
        return feed.FEED.identify("MSH|^~\\&|A|B|||2026||ADT^A01|X|P|2.5").answer(problem)

    def identify(text):
        found = feed.identify(text)
        return ingest.Identity(found.sender, found.key, answering, found.facts)

    return ingest.FeedMapper(name="hl7v2", label="HL7 v2", table=feed.TABLE, identify=identify,
                             map=feed.FEED.map, decode=feed.decode)


def test_a_failure_while_answering_is_recorded_and_the_resend_processed(store, tmp_path, monkeypatch, capsys):
    fail = ["the answer broke"]
    partner = _failing_feed(fail)
    source = feed.Source("http", "127.0.0.1", None)
    message = lab_result(control_id="CRASH1").encode()
    first = ingest.ingest(store, partner, message, None, source, "x")
    [(key, record)] = feed.records(store)
    assert record["state"] == "done" and record["reason"]["retry"] and first.answer is None
    assert [k for k, _ in feed.records(store, rejected_only=True)] == [key]
    fail.clear()
    again = ingest.ingest(store, partner, message, None, source, "x")  # processed again at once, not "busy"
    assert verdict(again.answer)[0] == "AA"
    records = feed.records(store)
    assert [doc["state"] for _, doc in records] == ["done", "done"]
    assert sorted(doc["outcome"] for _, doc in records) == ["AA", "failed"]
    assert [doc["attempts"] for k, doc in records if k == key] == [2]


def test_an_attempt_that_never_ended_is_kept_when_a_resend_takes_over(store):
    source = feed.Source("http", "127.0.0.1", None)
    message = lab_result(control_id="STUCK1")
    # what a server killed mid-way leaves: the record of an attempt older than the takeover delay
    store.kv_put(feed.TABLE, "LABSYS|LAB-Y|STUCK1", {"received": "2020-01-01T00:00:00Z", "state": "processing",
                                                      "raw": message, "sender": "LABSYS|LAB-Y", "attempts": 1})
    assert verdict(feed.receive(store, message.encode(), None, source, "x").answer)[0] == "AA"
    records = dict(feed.records(store))
    assert records["LABSYS|LAB-Y|STUCK1"]["outcome"] == "AA"
    [stale] = [doc for key, doc in records.items() if "|attempt|" in key]
    assert stale["state"] == "done" and stale["outcome"] == "AE" and stale["raw"] == message
    assert verdict(stale["ack"])[:2] == ("AE", "207")


def test_an_oversized_http_body_is_an_ar_ack_and_kept(tmp_path):
    live = serve(make_store("sqlite", tmp_path), max_body_bytes=4096)
    try:
        big = lab_result(control_id="BIG", obx="OBX|1|TX|11526-1^Note^LN||" + "x" * 8000 + "||||||F")
        response = live.http.post(live.origin + "/hl7v2", data=big.encode(), headers=ER7)
        assert response.status_code == 200 and verdict(response.text)[:2] == ("AR", "100")
        [(_, record)] = feed.records(live.store, rejected_only=True)
        assert record["truncated"] and record["raw"].startswith("MSH|")
    finally:
        live.close()


def test_a_truncation_character_before_v27_is_read_as_the_four_separators(store):
    source = feed.Source("http", "127.0.0.1", None)
    text = lab_result(control_id="T25").replace("MSH|^~\\&", "MSH|^~\\&#", 1)
    outcome = feed.receive(store, text.encode(), None, source, "x")
    assert verdict(outcome.answer) == ("AA", "", "2.5")



@pytest.mark.parametrize("sending", ["A&B^1.2.250^ISO^X^Y", "I\\X00\\MAGING\\E\\", "Organisation-X" * 3, "&&&", "^^^^"])
def test_what_a_sender_puts_in_msh_3_to_6_never_makes_its_ack_invalid(sending):
    # found by mutating the shared corpus: the HD values go back in the ACK, cut to what an HD may hold
    for version in ("2.3", "2.5", "2.8.2"):
        header = Header(sending_application=sending, sending_facility=sending, receiving_application=sending,
                        control_id="X1", message_code="ADT", trigger="A01", processing_id="P", version=version)
        for code, problem in (("AA", None), ("AE", Problem(102, "bad", "PID^1^5"))):
            assert verdict(acknowledge(header, code, problem, ack_id="A1"))[0] == code
