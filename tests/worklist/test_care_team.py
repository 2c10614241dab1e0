"""Whom to call, in order: pure functions over a Patient and its CareTeams."""

from fhir_server import codes
from fhir_server.searching.care_team import call_list, call_list_url, call_order, care_role, display_name
from tests.worklist.worklist_data import P1_CALLS, ward

TODAY = "2026-03-01"


def _by_id(resources, rtype):
    return {r["id"]: r for r in resources if r["resourceType"] == rtype}


def test_the_call_order_follows_codes_call_order_then_the_rest():
    resources = ward()
    patient = _by_id(resources, "Patient")["p1"]
    teams = [t for t in _by_id(resources, "CareTeam").values() if t["subject"]["reference"] == "Patient/p1"]
    order = call_order(patient, teams, TODAY)
    assert [(rid, role) for (_, rid), role in order] == P1_CALLS


def test_the_general_practitioner_of_the_patient_comes_first_even_without_a_care_team():
    patient = {"resourceType": "Patient", "id": "p", "generalPractitioner": [{"reference": "Practitioner/gp"}]}
    assert call_order(patient, [], TODAY) == [(("Practitioner", "gp"), "general-practitioner")]


def test_a_member_named_twice_keeps_the_role_called_first():
    team = {"status": "active", "participant": [
        {"member": {"reference": "Practitioner/x"}, "role": [{"coding": [
            {"system": codes.CARE_ROLE_SYSTEM, "code": "pharmacist"}]}]},
        {"member": {"reference": "Practitioner/x"}, "role": [{"coding": [
            {"system": codes.CARE_ROLE_SYSTEM, "code": "nurse"}]}]},
    ]}  # fmt: skip
    assert call_order({}, [team], TODAY) == [(("Practitioner", "x"), "nurse")]


def test_ended_participations_inactive_teams_and_the_patient_are_not_called():
    team = {"status": "active", "participant": [
        {"member": {"reference": "Practitioner/old"}, "period": {"end": "2026-02-28"}},
        {"member": {"reference": "Practitioner/still"}, "period": {"end": "2026-03-01"}},
        {"member": {"reference": "Patient/p"}},
        {"member": {"display": "Voisine"}},
    ]}  # fmt: skip
    inactive = {"status": "inactive", "participant": [{"member": {"reference": "Practitioner/z"}}]}
    assert call_order({}, [team, inactive], TODAY) == [(("Practitioner", "still"), "other")]


def test_care_role_reads_our_codes_and_snomed_and_ignores_the_rest():
    assert care_role([{"coding": [{"system": "http://snomed.info/sct", "code": "224571005"}]}]) == (
        "advanced-practice-nurse")
    assert care_role([{"coding": [{"system": "x", "code": "nurse"}]}, {"text": "kiné"}, "junk"]) is None
    both = [{"coding": [{"system": codes.CARE_ROLE_SYSTEM, "code": "physiotherapist"},
                        {"system": "http://snomed.info/sct", "code": "62247001"}]}]  # fmt: skip
    assert care_role(both) == "general-practitioner"


def test_call_list_is_a_list_ordered_by_priority_with_roles_as_flags():
    order = [(("Practitioner", "gp"), "general-practitioner"), (("Practitioner", "n"), "nurse")]
    result = call_list("p1", order, {("Practitioner", "gp"): "Dr Marie Durand"}, "2026-03-01T10:00:00Z")
    assert result["resourceType"] == "List" and result["mode"] == "snapshot" and "id" not in result
    assert result["orderedBy"]["coding"][0]["code"] == "priority"
    assert result["subject"] == {"reference": "Patient/p1"}
    assert [e["item"]["reference"] for e in result["entry"]] == ["Practitioner/gp", "Practitioner/n"]
    assert result["entry"][0]["item"]["display"] == "Dr Marie Durand"
    assert [e["flag"]["coding"][0]["code"] for e in result["entry"]] == ["general-practitioner", "nurse"]
    assert call_list_url("p1", order) == call_list_url("p1", list(order)) != call_list_url("p2", order)
    assert call_list("p1", [], {}, "2026-03-01")["emptyReason"]


def test_display_name():
    assert display_name({"name": [{"prefix": ["Dr"], "given": ["Marie"], "family": "Durand"}]}) == "Dr Marie Durand"
    assert display_name({"name": "Pharmacie du Centre"}) == "Pharmacie du Centre"
    assert display_name({"name": [{"text": "Jean Petit"}]}) == "Jean Petit"
    assert display_name({}) is None
