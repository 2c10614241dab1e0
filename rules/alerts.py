"""The Task and Flag a firing rule writes, and how a new firing updates an open Task. Pure: data in, data out.

A triage Task (``fhir_server.codes.TRIAGE_ALERT``) carries two kinds of identifiers: one naming its rule
(``RULE_SYSTEM``: which open Task a new firing of the same rule for the same patient updates) and one per
resource version that fired it (``TRIGGER_SYSTEM``: ``rule-id:Observation/o1/_history/1``), which the
write's transaction looks up to triage each stored version once. The Flag names its Task
(``FLAG_TASK_SYSTEM``) and points at it with the core ``flag-detail`` extension.
"""

from __future__ import annotations

from fhir_server.codes import (
    IDENTITY_RELIABILITY,
    IDENTITY_STATUS_SYSTEM,
    INS_SYSTEMS,
    QUALIFIED_IDENTITY_STATUSES,
    RELAIS_CODE_SYSTEMS,
    TRIAGE_ALERT,
    TRIAGE_CLASS_SYSTEM,
    TRIAGE_CLASSES,
)

from .engine import Firing
from .model import rank

RULE_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/triage-rule"  # Task.identifier and reasonCode: the rule's id
TRIGGER_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/triage-trigger"  # Task.identifier: a version that fired the rule
INPUT_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/triage-input"  # Task.input.type: trigger, observed, threshold
FLAG_TASK_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/triage-task"  # Flag.identifier: the id of its Task
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
OPEN_STATUSES = ("draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold")
CLOSED_STATUSES = ("completed", "cancelled", "failed", "rejected", "entered-in-error")
DISCLAIMER = ("Aide à la décision, pas un diagnostic : alerte levée automatiquement par une règle de triage. "
              "Le médecin coordonnateur juge de la conduite à tenir.")
REQUESTER = {"display": "Relais, triage automatique (relais-triage)"}
# What one open Task keeps of its triggers: the oldest give way (RELAIS_MAX_REPETITIONS, 1000 by default,
# bounds every array of a resource; a NEWS2 firing adds about a dozen inputs).
MAX_TRIGGERS = 200
MAX_INPUTS = 500


def trigger_key(rule_id: str, reference: str) -> str:
    """The identifier value that marks ``reference`` (a versioned reference) as triaged by a rule."""
    return f"{rule_id}:{reference}"


def triage_class(rule_class: str, patient: dict | None) -> str:
    """acute; chronic-known when the patient has a qualified INS (VALI or QUAL), chronic-unknown otherwise
    (the pre-DMP pathway starts)."""
    if rule_class == "acute":
        return "acute"
    return "chronic-known" if qualified_ins(patient) else "chronic-unknown"


def qualified_ins(patient: dict | None) -> bool:
    """Whether the Patient carries an INS whose identity status is qualified (FR Core)."""
    if not patient:
        return False
    if not any(i.get("system") in INS_SYSTEMS and i.get("value") for i in patient.get("identifier") or ()):
        return False
    for extension in patient.get("extension") or ():
        if extension.get("url") != IDENTITY_RELIABILITY:
            continue
        for part in extension.get("extension") or ():
            coding = part.get("valueCoding") or {}
            if part.get("url") == "identityStatus" and coding.get("system") == IDENTITY_STATUS_SYSTEM \
                    and coding.get("code") in QUALIFIED_IDENTITY_STATUSES:
                return True
    return False


def _input(code: str, text: str, **value) -> dict:
    return {"type": {"coding": [{"system": INPUT_SYSTEM, "code": code}], "text": text}, **value}


def inputs(firing: Firing, trigger: str, at: str) -> list[dict]:
    """What fired, readable without the code: the trigger, then each value observed and its threshold."""
    label = f"Déclencheur ({at}, priorité {firing.priority})"
    items = [_input("trigger", label, valueReference={"reference": trigger})]
    for finding in firing.findings:
        items.append(_input("observed", f"{finding.label} : observé", valueString=finding.observed))
        items.append(_input("threshold", f"{finding.label} : seuil", valueString=finding.threshold))
    return items


def _rule_coding(firing: Firing) -> dict:
    rule = firing.rule
    return {"coding": [{"system": RULE_SYSTEM, "version": rule.version, "code": rule.id, "display": rule.title}],
            "text": f"Règle {rule.id} version {rule.version}"}


def new_task(firing: Firing, task_id: str, trigger: str, focus: str, owner: dict, triage_class_code: str,
             at: str) -> dict:
    """The Task of a rule's first firing for a patient (no open one)."""
    return {
        "resourceType": "Task",
        "id": task_id,
        "identifier": [{"system": RULE_SYSTEM, "value": firing.rule.id},
                       {"system": TRIGGER_SYSTEM, "value": trigger_key(firing.rule.id, trigger)}],
        "status": "requested",
        "businessStatus": {"coding": [{"system": TRIAGE_CLASS_SYSTEM, "code": triage_class_code,
                                       "display": TRIAGE_CLASSES[triage_class_code]}]},
        "intent": "order",
        "priority": firing.priority,
        "code": {"coding": [dict(TRIAGE_ALERT)], "text": TRIAGE_ALERT["display"]},
        "description": firing.message,
        "focus": {"reference": focus},
        "for": {"reference": f"Patient/{firing.patient}"},
        "authoredOn": at,
        "lastModified": at,
        "requester": dict(REQUESTER),
        "owner": dict(owner),
        "reasonCode": _rule_coding(firing),
        "note": [{"text": DISCLAIMER}],
        "input": inputs(firing, trigger, at),
    }


def updated_task(task: dict, firing: Firing, trigger: str, focus: str, at: str) -> dict:
    """An open Task after one more firing of its rule: the new focus, trigger and values added, the priority
    raised if the new one is higher (never lowered), the message of the most urgent firing."""
    task = dict(task)
    task.pop("meta", None)
    identifiers = [i for i in task.get("identifier") or () if i.get("system") != TRIGGER_SYSTEM]
    triggers = [i for i in task.get("identifier") or () if i.get("system") == TRIGGER_SYSTEM]
    triggers.append({"system": TRIGGER_SYSTEM, "value": trigger_key(firing.rule.id, trigger)})
    task["identifier"] = identifiers + triggers[-MAX_TRIGGERS:]
    if rank(firing.priority) > rank(task.get("priority", "routine")):
        task["priority"] = firing.priority
        task["description"] = firing.message
    task["focus"] = {"reference": focus}
    task["reasonCode"] = _rule_coding(firing)
    task["lastModified"] = at
    items = list(task.get("input") or ()) + inputs(firing, trigger, at)
    # keep the inputs of the last MAX_TRIGGERS triggers: each trigger's group starts with its "trigger" entry
    starts = [i for i, item in enumerate(items) if _input_code(item) == "trigger"]
    kept = starts[-MAX_TRIGGERS:]
    while len(kept) > 1 and len(items) - kept[0] > MAX_INPUTS:
        kept = kept[1:]
    if kept:
        items = items[kept[0]:]
    task["input"] = items
    return task


def _input_code(item: dict) -> str | None:
    codings = (item.get("type") or {}).get("coding") or [{}]
    return codings[0].get("code")


def new_flag(firing: Firing, task_id: str, at: str) -> dict:
    """The Flag on the patient while the Task is open."""
    return {
        "resourceType": "Flag",
        "extension": [{"url": FLAG_DETAIL, "valueReference": {"reference": f"Task/{task_id}"}}],
        "identifier": [{"system": FLAG_TASK_SYSTEM, "value": task_id}],
        "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}],
        "code": {"coding": [dict(TRIAGE_ALERT)], "text": firing.message},
        "subject": {"reference": f"Patient/{firing.patient}"},
        "period": {"start": at},
        "author": dict(REQUESTER),
    }


def ended_flag(flag: dict, at: str) -> dict:
    """The Flag once its Task is completed or cancelled."""
    flag = dict(flag)
    flag.pop("meta", None)
    flag["status"] = "inactive"
    flag["period"] = {**(flag.get("period") or {}), "end": at}
    return flag


def is_triage_task(task: dict | None) -> bool:
    return bool(task) and any(c.get("system") == TRIAGE_ALERT["system"] and c.get("code") == TRIAGE_ALERT["code"]
                              for c in (task.get("code") or {}).get("coding") or ())
