"""What a triage rule is, once its YAML file is read and checked: plain frozen data, no I/O.

A rule fires on a resource that meets its ``trigger`` (search criteria, matched in memory as a
Subscription's) and all of its ``conditions``; it then raises ``priority``, or the priority of the first
of its ``escalations`` whose conditions also hold (hypoglycaemia: urgent below 70 mg/dL, stat below 54).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.codes import PRIORITY_ORDER
from fhir_server.search.query import SearchQuery

PRIORITIES = tuple(reversed(PRIORITY_ORDER))  # routine < urgent < asap < stat
CLASSES = ("acute", "chronic")
# Comparison of a measured value with a threshold: the YAML key, its symbol, the test.
OPERATORS = {
    "above": (">", lambda value, limit: value > limit),
    "at_least": ("≥", lambda value, limit: value >= limit),
    "below": ("<", lambda value, limit: value < limit),
    "at_most": ("≤", lambda value, limit: value <= limit),
}


def rank(priority: str) -> int:
    """routine 0, urgent 1, asap 2, stat 3: a higher rank is more urgent."""
    return PRIORITIES.index(priority)


@dataclass(frozen=True)
class Limit:
    """A threshold: ``op`` one of OPERATORS, a value per unit (UCUM code; "" for a unitless value)."""

    op: str
    values: tuple[tuple[str, float], ...]  # (unit, value): the first unit the measure converts to is used

    def describe(self, unit: str, value: float) -> str:
        return f"{OPERATORS[self.op][0]} {value:g} {unit}".rstrip()


@dataclass(frozen=True)
class Threshold:
    """The resource's value (``component`` None) or one component's value against a limit.

    ``codes`` restricts the value to a component (or, with ``component`` False, to the resource's code).
    ``override`` ("low" or "high"): a clinician's Goal for this measure replaces the limit for that patient
    (below its low, above its high).
    """

    limit: Limit
    component: tuple[tuple[str, str], ...] | None = None  # (system, code) of the component, any of them
    label: str = ""
    override: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Trend:
    """The new value against earlier ones of the same measure within ``window_s``: ``rise`` (new minus the
    lowest earlier) or ``drop`` (the highest earlier minus new) beyond ``amount`` ``unit``."""

    codes: tuple[tuple[str, str], ...]
    direction: str  # rise | drop
    amount: float
    unit: str
    window_s: float
    label: str = ""
    line: int = 0


@dataclass(frozen=True)
class Count:
    """At least ``at_least`` resources meeting ``query`` (default: the rule's trigger) for the same patient
    within ``window_s`` before the trigger, the trigger included."""

    at_least: int
    window_s: float
    query: SearchQuery | None = None
    date_param: str = "date"
    label: str = ""
    line: int = 0


@dataclass(frozen=True)
class News2:
    """NEWS2 over the patient's latest vital signs within ``window_s``, once ``min_parameters`` of them are
    there: fires when the total is ``at_least`` or (``single`` set) one parameter scores ``single``."""

    at_least: int
    single: int | None = None
    window_s: float = 3600.0
    min_parameters: int = 4
    line: int = 0


@dataclass(frozen=True)
class Text:
    """The resource's free text (Communication payload, QuestionnaireResponse answers) mentions one of
    ``concepts`` without denying it."""

    concepts: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True)
class AnyOf:
    """At least one of ``conditions`` holds (each one that holds is reported)."""

    conditions: tuple[Condition, ...]
    line: int = 0


Condition = Threshold | Trend | Count | News2 | Text | AnyOf


@dataclass(frozen=True)
class Escalation:
    priority: str
    conditions: tuple[Condition, ...]
    message: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    version: str
    title: str
    trigger: str
    query: SearchQuery
    conditions: tuple[Condition, ...]
    priority: str
    rule_class: str  # acute | chronic
    message: str
    sources: tuple[str, ...]
    escalations: tuple[Escalation, ...] = ()
    path: str = ""
    line: int = 0

    @property
    def resource_type(self) -> str:
        return self.query.resource_type


_CODE_PARAMS = ("code", "component-code")


def trigger_codes(query: SearchQuery) -> frozenset[str] | None:
    """The codes one of which a resource must carry (as its code or a component's) to meet ``query``; None
    when the trigger does not say (no clause of code tests alone, or one that accepts any code)."""
    for clause in query.clauses:
        if clause and all(p.param in _CODE_PARAMS and p.kind == "token" and p.op == "eq" and len(p.values) == 2
                          and p.values[1] is not None for p in clause):
            return frozenset(p.values[1] for p in clause)
    return None


@dataclass(frozen=True)
class RuleSet:
    """The loaded rules, by the resource type their trigger names.

    ``codes_by_type``: the codes some rule of the type needs, so that a resource carrying none of them is
    passed over without extracting its index values (None: a rule of the type takes any code).
    """

    rules: tuple[Rule, ...] = ()
    by_type: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    codes_by_type: dict[str, frozenset[str] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: list[Rule] | tuple[Rule, ...]) -> RuleSet:
        by_type: dict[str, list[Rule]] = {}
        for rule in rules:
            by_type.setdefault(rule.resource_type, []).append(rule)
        codes: dict[str, frozenset[str] | None] = {}
        for rtype, group in by_type.items():
            wanted = [trigger_codes(rule.query) for rule in group]
            codes[rtype] = None if any(w is None for w in wanted) else frozenset().union(*wanted)
        return cls(tuple(rules), {t: tuple(r) for t, r in by_type.items()}, codes)

    def may_trigger(self, resource: dict) -> bool:
        """False when no rule's trigger can match ``resource`` (its type, or none of the codes they need)."""
        rtype = resource.get("resourceType", "")
        if rtype not in self.by_type:
            return False
        wanted = self.codes_by_type.get(rtype)
        if wanted is None:
            return True
        carried = [resource.get("code")] + [c.get("code") for c in resource.get("component") or ()]
        return any(coding.get("code") in wanted for concept in carried if isinstance(concept, dict)
                   for coding in concept.get("coding") or () if isinstance(coding, dict))

    def for_type(self, resource_type: str) -> tuple[Rule, ...]:
        return self.by_type.get(resource_type, ())
