"""A table of REST searches over the Synthea data, each checked against a plain scan of the fixture JSON.

Each row is (query, predicate over one resource of the query's type, expected size). The predicates read
the raw JSON (dict access, ``fold`` for case and accents, ``datetime`` for dates) and never use
``fhir_server.search``: they are written from the R4 search page (hl7.org/fhir/R4/search.html), so they
check the server's matcher rather than repeat it. The loading and paging helpers come from
test_search_api.py (its ``api`` fixture: the same resources on SQLite and mongomock).

Not covered, for want of data: the number type (no R4 number parameter exists on the served Synthea
types). No Reference in the data carries an identifier, so the ``reference:identifier`` row only checks
the empty answer; so do the uri parameters (``instantiates-uri``, ``_profile``, ``_source``) and
``_security``, where ``:missing=true`` checks that every resource is found. Reference presence is
all-or-nothing per parameter in this data, so ``reference:missing`` has an all row and an empty one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import test_search_api
from search_fixtures import needs_ucum
from test_search_api import BASE, BUSTER, LIZ, Client, ids, loaded_resources

api = test_search_api.api  # the module-scoped fixture: this module gets its own loaded server per backend

# Every resource is written through the API after this module is imported: the server stamps
# meta.lastUpdated itself (the fixture's stamps do not survive a PUT), so only this bound is known.
IMPORTED = datetime.now(UTC).replace(microsecond=0)
IMPORTED_S = IMPORTED.strftime("%Y-%m-%dT%H:%M:%SZ")

RESOURCES = loaded_resources()
BY_REF = {f"{r['resourceType']}/{r['id']}": r for r in RESOURCES}
CLEMENTE = "d78af07c-9cb9-4f31-9b11-c45a28f2eec8"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
TAGS = "https://smarthealthit.org/tags"
SSN = "http://hl7.org/fhir/sid/us-ssn"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

SOME, NONE, ALL = "some", "none", "all"  # the expected answer: a proper non-empty subset, empty, every resource


# --- plain readings of the JSON --------------------------------------------------------------------


def fold(s: str) -> str:
    """Lower case, accents removed: what R4 string search compares."""
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).lower()


def name_parts(r: dict) -> list[str]:
    return [p for n in r.get("name", []) for p in [n.get("family", ""), *n.get("given", [])] if p]


def family(r: dict) -> list[str]:
    return [n["family"] for n in r.get("name", []) if "family" in n]


def codings(cc: dict | None) -> set[tuple[str | None, str]]:
    return {(c.get("system"), c.get("code")) for c in (cc or {}).get("coding", [])}


def has_code(cc: dict | None, system: str | None, code: str | None) -> bool:
    """Token ``system|code``; system None = any, "" = no system; code None = any code in that system."""
    return any(
        (system is None or (s == system if system else s is None)) and (code is None or c == code)
        for s, c in codings(cc)
    )


def obs_code(o: dict) -> str:
    return o["code"]["coding"][0]["code"]


def ref(r: dict, field: str) -> str | None:
    return (r.get(field) or {}).get("reference")


def target(r: dict, field: str) -> dict | None:
    return BY_REF.get(ref(r, field) or "")


def quantity(o: dict, code: str) -> float | None:
    q = o.get("valueQuantity", {})
    return q["value"] if q.get("code") == code and q.get("system") == UCUM else None


# --- dates: half-open [start, end) ranges, the nine prefixes written from the R4 page ------------------


def parse_range(value: str) -> tuple[datetime, datetime]:
    """The span a FHIR date/dateTime covers at its precision (no timezone: UTC)."""
    if len(value) == 4:
        start = datetime(int(value), 1, 1, tzinfo=UTC)
        return start, start.replace(year=start.year + 1)
    if len(value) == 7:
        start = datetime(int(value[:4]), int(value[5:]), 1, tzinfo=UTC)
        return start, (start + timedelta(days=32)).replace(day=1)
    if len(value) == 10:
        start = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return start, start + timedelta(days=1)
    start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start, start + timedelta(seconds=1)


def date_op(query: str, value: tuple[datetime, datetime]) -> bool:
    """``[prefix]date`` against a value's span, per the R4 prefix table."""
    op, raw = (query[:2], query[2:]) if query[:2].isalpha() else ("eq", query)
    lo, hi = parse_range(raw)
    vlo, vhi = value
    contained = lo <= vlo and vhi <= hi
    if op == "ap":  # "10% of the gap between now and the date", on both sides of the search range
        tol = abs(datetime.now(UTC) - (lo + (hi - lo) / 2)) / 10
        return vlo < hi + tol and vhi > lo - tol
    return {
        "eq": contained,
        "ne": not contained,
        "gt": vhi > hi,  # the range above the search value overlaps the value
        "lt": vlo < lo,
        "ge": vhi > hi or contained,
        "le": vlo < lo or contained,
        "sa": vlo >= hi,  # starts after the search range ends
        "eb": vhi <= lo,  # ends before the search range starts
    }[op]


def period(p: dict) -> tuple[datetime, datetime]:
    return parse_range(p["start"])[0], parse_range(p["end"])[1]


def obs_date(q: str) -> Callable[[dict], bool]:
    return lambda o: date_op(q, parse_range(o["effectiveDateTime"]))


def enc_date(q: str) -> Callable[[dict], bool]:
    return lambda e: date_op(q, period(e["period"]))


def birth(q: str) -> Callable[[dict], bool]:
    return lambda p: date_op(q, parse_range(p["birthDate"]))


# --- numbers: the search value's precision gives eq its range -----------------------------------------


def num_op(query: str, value: float) -> bool:
    op, raw = (query[:2], query[2:]) if query[:2].isalpha() else ("eq", query)
    v = float(raw)
    half = 0.5 * 10 ** -(len(raw.partition(".")[2]))
    within = v - half <= value < v + half
    return {
        "eq": within,
        "ne": not within,
        "gt": value > v,
        "sa": value > v,
        "lt": value < v,
        "eb": value < v,
        "ge": value >= v,
        "le": value <= v,
        "ap": abs(value - v) <= abs(v) / 10,
    }[op]


def qty(query: str, code: str, factor: float = 1.0) -> Callable[[dict], bool]:
    """``value-quantity`` in ``code`` (UCUM); ``factor`` converts the stored unit into the query's."""
    return lambda o: (v := quantity(o, code)) is not None and num_op(query, v * factor)


def systolic(o: dict) -> float | None:
    return next((c["valueQuantity"]["value"] for c in o.get("component", []) if has_code(c["code"], LOINC, "8480-6")),
                None)


def has_obs(pred: Callable[[dict], bool], field: str) -> Callable[[dict], bool]:
    """``_has:Observation:<field>:...``: some Observation satisfying ``pred`` points at the resource."""
    def check(r: dict) -> bool:
        me = f"{r['resourceType']}/{r['id']}"
        return any(o["resourceType"] == "Observation" and ref(o, field) == me and pred(o) for o in RESOURCES)
    return check


def code_text(cc: dict, q: str) -> bool:
    """``:text``: CodeableConcept.text or a Coding.display starts with the words searched (string search)."""
    texts = [cc.get("text", ""), *(c.get("display", "") for c in cc.get("coding", []))]
    return any(fold(t).startswith(fold(q)) for t in texts)


def tagged(r: dict, system: str, code: str) -> bool:
    return any(t.get("system") == system and t.get("code") == code for t in r["meta"].get("tag", []))


def of_type_id(r: dict, tsys: str, tcode: str, value: str) -> bool:
    return any(has_code(i.get("type"), tsys, tcode) and i.get("value") == value for i in r.get("identifier", []))


def identifier(r: dict, system: str, value: str) -> bool:
    return any(i.get("system") == system and i.get("value") == value for i in r.get("identifier", []))


# --- the table -------------------------------------------------------------------------------------


def row(url: str, pred: Callable[[dict], bool], size: str = SOME, xfail: str | None = None, marks=()):
    label = url
    for value, name in [(LIZ, "LIZ"), (BUSTER, "BUSTER"), (CLEMENTE, "CLEMENTE"), (IMPORTED_S, "IMPORT")]:
        label = label.replace(value, name)  # stable, short test ids
    marks = [*marks, *([pytest.mark.xfail(strict=True, reason=xfail)] if xfail else [])]
    return pytest.param(url, pred, size, id=label, marks=marks)


ROWS = [
    # string: starts-with, case and accents folded; :exact; :contains
    row("Practitioner?family=SCH", lambda r: any(fold(f).startswith("sch") for f in family(r))),
    row("Practitioner?family=URIA", lambda r: any(fold(f).startswith("uria") for f in family(r))),
    row("Practitioner?family=rodríg", lambda r: any(fold(f).startswith("rodrig") for f in family(r))),
    row("Patient?name=rowe", lambda r: any(fold(p).startswith("rowe") for p in name_parts(r))),
    row("Practitioner?given=eliz", lambda r: any(fold(g).startswith("eliz") for n in r["name"] for g in n["given"])),
    row("Practitioner?address-city=boston", lambda r: any(fold(a["city"]).startswith("boston") for a in r["address"])),
    row("Practitioner?family:exact=Rodrígez", lambda r: "Rodrígez" in family(r)),
    row("Practitioner?family:exact=Rodrigez", lambda r: "Rodrigez" in family(r), NONE),
    row("Practitioner?family:exact=stark", lambda r: "stark" in family(r), NONE),
    row("Practitioner?family:contains=ER", lambda r: any("er" in fold(f) for f in family(r))),
    row("Practitioner?family:contains=ría", lambda r: any("ria" in fold(f) for f in family(r))),
    # token
    row(f"Observation?code={LOINC}|8302-2", lambda o: has_code(o["code"], LOINC, "8302-2")),
    row("Observation?code=8302-2", lambda o: has_code(o["code"], None, "8302-2")),
    row("Observation?code=|8302-2", lambda o: has_code(o["code"], "", "8302-2"), NONE),  # every coding has a system
    row(f"Observation?value-concept={SNOMED}|", lambda o: has_code(o.get("valueCodeableConcept"), SNOMED, None)),
    row(f"Encounter?reason-code={SNOMED}|", lambda e: any(has_code(c, SNOMED, None) for c in e.get("reasonCode", []))),
    row(f"Observation?code:not={LOINC}|8302-2", lambda o: not has_code(o["code"], LOINC, "8302-2")),
    row("Observation?category:not=vital-signs", lambda o: not any(has_code(c, None, "vital-signs")
                                                                   for c in o["category"])),
    row("Observation?code:text=BODY", lambda o: code_text(o["code"], "body")),
    row("Encounter?reason-code:missing=true", lambda e: not e.get("reasonCode")),
    row("Encounter?reason-code:missing=false", lambda e: bool(e.get("reasonCode"))),
    row("Observation?value-concept:missing=false", lambda o: "valueCodeableConcept" in o),
    row(f"Patient?identifier={SSN}|999-59-2277", lambda p: identifier(p, SSN, "999-59-2277")),
    row(f"Patient?identifier:of-type={V2_0203}|SS|999-34-1238", lambda p: of_type_id(p, V2_0203, "SS", "999-34-1238")),
    row(f"Patient?identifier:of-type={V2_0203}|DL|999-34-1238", lambda p: of_type_id(p, V2_0203, "DL", "999-34-1238"),
        NONE),  # the value is an SSN, not a driver's licence
    row("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|60",
        lambda r: identifier(r, "http://hl7.org/fhir/sid/us-npi", "60")),
    row("Patient?gender=female", lambda p: p["gender"] == "female"),
    # date on a dateTime (Observation.effectiveDateTime)
    row("Observation?date=2015-08", obs_date("2015-08")),  # a partial date covers the month
    row("Observation?date=eq2016-12-14", obs_date("eq2016-12-14")),
    row("Observation?date=ne2012", obs_date("ne2012")),
    row("Observation?date=lt2013-01-01", obs_date("lt2013-01-01")),
    row("Observation?date=gt2018-09-01", obs_date("gt2018-09-01")),
    row("Observation?date=le2013-12-11T13:55:57%2B00:00", obs_date("le2013-12-11T13:55:57+00:00")),
    row("Observation?date=ge2018-09-17T15:29:24Z", obs_date("ge2018-09-17T15:29:24Z")),
    row("Observation?date=sa2016", obs_date("sa2016")),
    row("Observation?date=eb2015-08-14", obs_date("eb2015-08-14")),
    row("Observation?date=ap2013-06-01", obs_date("ap2013-06-01")),  # 2012-09 .. 2013-12 in, 2015 and 2005 far out
    # date on a Period (Encounter.period)
    row("Encounter?date=2012-09", enc_date("2012-09")),
    row("Encounter?date=eq2012-09-29", enc_date("eq2012-09-29"), NONE),  # 09-29 .. 09-30 is not inside the day
    row("Encounter?date=ne2012-09", enc_date("ne2012-09")),
    row("Encounter?date=lt2012", enc_date("lt2012")),
    row("Encounter?date=gt2018", enc_date("gt2018")),
    row("Encounter?date=le2006-08-04", enc_date("le2006-08-04")),
    row("Encounter?date=ge2018-08-17", enc_date("ge2018-08-17")),
    row("Encounter?date=sa2015-09-14", enc_date("sa2015-09-14")),
    row("Encounter?date=eb2012-09-30", enc_date("eb2012-09-30")),  # 2012-09-29 .. 09-30 does not end before
    row("Encounter?date=ap2012-03-01", enc_date("ap2012-03-01")),  # 2011-10 .. 2012-09 in, 2013-12 months out
    # date on a date (Patient.birthDate: 1984-07-02, 1986-11-28, 1988-03-16)
    row("Patient?birthdate=1986-11-28", birth("1986-11-28")),
    row("Patient?birthdate=eq1986-11", birth("eq1986-11")),
    row("Patient?birthdate=ne1986-11-28", birth("ne1986-11-28")),
    row("Patient?birthdate=lt1986", birth("lt1986")),
    row("Patient?birthdate=gt1986", birth("gt1986")),
    row("Patient?birthdate=le1986-11-28", birth("le1986-11-28")),
    row("Patient?birthdate=ge1986-11-28", birth("ge1986-11-28")),
    row("Patient?birthdate=sa1984-07-02", birth("sa1984-07-02")),
    row("Patient?birthdate=eb1988", birth("eb1988")),
    row("Patient?birthdate=ap1981-06-01", birth("ap1981-06-01")),  # ±4.5 years: 1984 in, 1986-11 ten months out
    row("Condition?abatement-date:missing=true", lambda c: "abatementDateTime" not in c),
    # reference
    row(f"Observation?subject=Patient/{LIZ}", lambda o: ref(o, "subject") == f"Patient/{LIZ}"),
    row(f"Observation?subject={LIZ}", lambda o: ref(o, "subject").split("/")[-1] == LIZ),
    row(f"Observation?subject={BASE}/Patient/{LIZ}", lambda o: ref(o, "subject") == f"Patient/{LIZ}"),
    row(f"Observation?subject:Patient={BUSTER}", lambda o: ref(o, "subject") == f"Patient/{BUSTER}"),
    row(f"Observation?subject:identifier={SSN}|999-34-1238",  # no Reference in the data has an identifier
        lambda o: o["subject"].get("identifier", {}).get("value") == "999-34-1238", NONE),
    row(f"Encounter?patient={CLEMENTE}", lambda e: ref(e, "subject") == f"Patient/{CLEMENTE}"),
    # Reference presence is all-or-nothing in this data (no reference parameter is set on some resources only).
    row("Claim?care-team:missing=true", lambda c: not c.get("careTeam"), ALL),
    row("Encounter?service-provider:missing=true", lambda e: "serviceProvider" not in e, NONE),
    # quantity
    row(f"Observation?value-quantity=gt80|{UCUM}|kg", qty("gt80", "kg")),
    row("Observation?value-quantity=lt70||kg", qty("lt70", "kg")),
    row("Observation?value-quantity=ge185||cm", qty("ge185", "cm")),
    row("Observation?value-quantity=le70||kg", qty("le70", "kg")),
    row("Observation?value-quantity=165.1||cm", qty("165.1", "cm")),  # 165.136 is within [165.05, 165.15)
    row("Observation?value-quantity=ne165.1||cm", qty("ne165.1", "cm")),
    row("Observation?value-quantity=sa80||kg", qty("sa80", "kg")),
    row("Observation?value-quantity=eb70||kg", qty("eb70", "kg")),
    row(f"Observation?value-quantity=ap15|{UCUM}|g/dL", qty("ap15", "g/dL")),  # 15.465, 15.536; 16.557 is out
    row("Observation?value-quantity=lt5", lambda o: num_op("lt5", o.get("valueQuantity", {}).get("value", 5))),
    row(f"Observation?value-quantity=gt80000|{UCUM}|g", qty("gt80000", "kg", 1000), marks=[needs_ucum]),
    row(f"Observation?value-quantity=gt1.8|{UCUM}|m", qty("gt1.8", "cm", 0.01), marks=[needs_ucum]),
    # composite
    row(f"Observation?code-value-quantity={LOINC}|29463-7$gt80",
        lambda o: has_code(o["code"], LOINC, "29463-7") and o["valueQuantity"]["value"] > 80),
    row(f"Observation?component-code-value-quantity={LOINC}|8480-6$gt130",
        lambda o: (s := systolic(o)) is not None and s > 130),
    row(f"Observation?component-code-value-quantity={LOINC}|8480-6$le115",
        lambda o: (s := systolic(o)) is not None and s <= 115),
    # uri (no data: the empty answer, and :missing=true finds everything)
    row("CarePlan?instantiates-uri=http://example.org/protocol", lambda c: "instantiatesUri" in c, NONE),
    row("Procedure?instantiates-uri:missing=true", lambda p: "instantiatesUri" not in p, ALL),
    # resource parameters
    row(f"Patient?_id={LIZ},{BUSTER}", lambda p: p["id"] in (LIZ, BUSTER)),
    row(f"Patient?_lastUpdated=ge{IMPORTED_S}", lambda p: True, ALL),  # every resource was written after import
    row(f"Patient?_lastUpdated=lt{IMPORTED_S}", lambda p: False, NONE),
    row(f"Observation?_tag={TAGS}|synthea-5-2019", lambda o: tagged(o, TAGS, "synthea-5-2019"), ALL),
    row(f"Observation?_tag={TAGS}|synthea-5-2019&code=8302-2",
        lambda o: tagged(o, TAGS, "synthea-5-2019") and obs_code(o) == "8302-2"),
    row(f"Patient?_tag={TAGS}|other", lambda p: tagged(p, TAGS, "other"), NONE),
    row("Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
        lambda p: bool(p["meta"].get("security")), NONE),
    row("Patient?_security:missing=true", lambda p: not p["meta"].get("security"), ALL),
    row("Observation?_profile=http://hl7.org/fhir/StructureDefinition/vitalsigns",
        lambda o: bool(o["meta"].get("profile")), NONE),
    row("Observation?_source=http://example.org/feed", lambda o: "source" in o["meta"], NONE),
    # chains and reverse chains
    row("Observation?subject:Patient.name=rowe",
        lambda o: any(fold(p).startswith("rowe") for p in name_parts(target(o, "subject") or {}))),
    row("Observation?subject.gender=female", lambda o: (target(o, "subject") or {}).get("gender") == "female"),
    row("Encounter?subject.birthdate=lt1986", lambda e: birth("lt1986")(target(e, "subject"))),
    row("Encounter?participant.family=stark",
        lambda e: any(fold(f).startswith("stark") for p in e.get("participant", [])
                      for f in family(BY_REF.get(p["individual"]["reference"], {})))),
    row(f"Patient?_has:Observation:subject:code={LOINC}|33914-3",
        has_obs(lambda o: has_code(o["code"], LOINC, "33914-3"), "subject")),
    row(f"Encounter?_has:Observation:encounter:code={LOINC}|2093-3",
        has_obs(lambda o: has_code(o["code"], LOINC, "2093-3"), "encounter")),
    # OR by comma, AND by repetition
    row("Observation?code=8302-2,29463-7", lambda o: obs_code(o) in ("8302-2", "29463-7")),
    row("Patient?family=conn,hoeg", lambda p: any(fold(f).startswith(("conn", "hoeg")) for f in family(p))),
    row("Observation?date=ge2015&date=lt2017", lambda o: obs_date("ge2015")(o) and obs_date("lt2017")(o)),
    row("Practitioner?family=s&family:contains=er",
        lambda r: any(fold(f).startswith("s") for f in family(r)) and any("er" in fold(f) for f in family(r))),
    row(f"Observation?code:not={LOINC}|8302-2&code:not={LOINC}|29463-7&category=vital-signs",
        lambda o: obs_code(o) not in ("8302-2", "29463-7") and any(has_code(c, None, "vital-signs")
                                                                    for c in o["category"])),
]


@pytest.mark.parametrize(("url", "pred", "size"), ROWS)
def test_search_matches_plain_scan(api: Client, url: str, pred: Callable[[dict], bool], size: str) -> None:
    candidates = [r for r in RESOURCES if r["resourceType"] == url.partition("?")[0]]
    expected = {r["id"] for r in candidates if pred(r)}
    if size == SOME:
        assert 0 < len(expected) < len(candidates), "the row would pass vacuously"
    else:
        assert expected == (set() if size == NONE else {r["id"] for r in candidates})
    entries = api.all_pages(f"{url}&_count=1000")
    assert not [e for e in entries if e["search"]["mode"] == "outcome"], "a parameter was ignored"
    assert ids(entries) == expected

