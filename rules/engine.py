"""Evaluate rules on one resource: which fire, at what priority, and why (the values and thresholds).

Pure but for ``Facts``, the history a condition may ask for (earlier measures, counts over a window, the
patient's Goals): the store gives it in service (``rules/facts.py``), a list in a unit test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from fhir_server.search.extract import index_values
from fhir_server.search.matcher import matches
from fhir_server.search.query import SearchQuery

from . import news2 as scoring
from .measures import Code, compare, convert, has_code, in_use, moment, patient_of, quantity
from .model import (
    OPERATORS,
    AnyOf,
    Condition,
    Count,
    Limit,
    News2,
    Rule,
    RuleSet,
    Text,
    Threshold,
    Trend,
    rank,
)

log = logging.getLogger("relais.triage")
LOINC = scoring.LOINC


class Facts(Protocol):
    """What conditions read besides the resource: all about one patient, up to the trigger's time."""

    def observations(self, patient: str, codes: tuple[Code, ...], start: float, end: float) -> list[dict]:
        """The patient's Observations carrying one of ``codes`` (as code or component), in effect between
        ``start`` and ``end`` inclusive."""

    def count(self, query: SearchQuery, patient: str, date_param: str, start: float, end: float) -> int:
        """How many of the patient's resources meet ``query`` with a time between ``start`` and ``end``."""

    def goals(self, patient: str) -> list[dict]:
        """The patient's active Goals (per-patient targets and thresholds set by a clinician)."""


@dataclass(frozen=True)
class Finding:
    """One reason a rule fired: what was observed and the threshold it crossed, in words."""

    label: str
    observed: str  # "185 mm[Hg]", "+2.4 kg en 3 j", "2 chutes en 7 j", "« douleur thoracique »"
    threshold: str  # "≥ 180 mm[Hg]"
    value: float | None = None
    unit: str = ""


@dataclass(frozen=True)
class Firing:
    """A rule that fired on a resource, for a patient."""

    rule: Rule
    patient: str
    priority: str
    message: str
    findings: tuple[Finding, ...]


@dataclass
class _Context:
    resource: dict
    patient: str
    at: float
    facts: Facts
    rule: Rule
    _goals: list[dict] | None = None

    def goals(self) -> list[dict]:
        if self._goals is None:
            self._goals = self.facts.goals(self.patient)
        return self._goals


def evaluate(rules: RuleSet, resource: dict, facts: Facts, *, only: tuple[str, ...] | None = None) -> list[Firing]:
    """The rules of ``rules`` that fire on ``resource`` (``only``: these rule ids), each with its reasons."""
    candidates = [r for r in rules.for_type(resource.get("resourceType", "")) if only is None or r.id in only]
    if not candidates or not in_use(resource) or not rules.may_trigger(resource):
        return []
    patient = patient_of(resource)
    at = moment(resource)
    if patient is None or at is None:
        return []
    rows = index_values(resource)
    fired = []
    for rule in candidates:
        if not matches(rule.query, resource, rows=rows):
            continue
        try:
            firing = fire(rule, resource, patient, at, facts)
        except Exception:  # say which rule; the event is retried, then kept with its error (relais outbox)
            log.exception("rule %s v%s failed on %s/%s", rule.id, rule.version, resource.get("resourceType"),
                          resource.get("id"))
            raise
        if firing is not None:
            fired.append(firing)
    return fired


def triggered(rules: RuleSet, resource: dict) -> tuple[str, ...]:
    """The ids of the rules whose trigger ``resource`` meets (conditions not evaluated)."""
    candidates = rules.for_type(resource.get("resourceType", ""))
    if not candidates or not rules.may_trigger(resource):
        return ()
    rows = index_values(resource)
    return tuple(r.id for r in candidates if matches(r.query, resource, rows=rows))


def fire(rule: Rule, resource: dict, patient: str, at: float, facts: Facts) -> Firing | None:
    """The firing of ``rule`` on ``resource`` (already matching its trigger), or None."""
    ctx = _Context(resource, patient, at, facts, rule)
    findings = _all(rule.conditions, ctx)
    if findings is None:
        return None
    priority, message = rule.priority, rule.message
    for escalation in rule.escalations:
        more = _all(escalation.conditions, ctx)
        if more is not None and rank(escalation.priority) > rank(priority):
            priority, message = escalation.priority, escalation.message or message
            findings = findings + tuple(f for f in more if f not in findings)
    return Firing(rule, patient, priority, message, findings)


def _all(conditions: tuple[Condition, ...], ctx: _Context) -> tuple[Finding, ...] | None:
    """The findings of every condition, or None if one does not hold."""
    findings: list[Finding] = []
    for condition in conditions:
        found = holds(condition, ctx)
        if found is None:
            return None
        findings.extend(found)
    return tuple(findings)


def holds(condition: Condition, ctx: _Context) -> list[Finding] | None:
    """The findings of one condition (possibly none to report), or None when it does not hold."""
    if isinstance(condition, Threshold):
        return _threshold(condition, ctx)
    if isinstance(condition, Trend):
        return _trend(condition, ctx)
    if isinstance(condition, Count):
        return _count(condition, ctx)
    if isinstance(condition, News2):
        return _news2(condition, ctx)
    if isinstance(condition, Text):
        return _text(condition, ctx)
    if isinstance(condition, AnyOf):
        found = [f for c in condition.conditions if (f := holds(c, ctx)) is not None]
        return [f for group in found for f in group] if found else None
    raise TypeError(f"unknown condition {condition!r}")


def _codes_of(concept: dict | None) -> tuple[Code, ...]:
    return tuple((c.get("system"), c.get("code")) for c in (concept or {}).get("coding") or ())


def _override(condition: Threshold, measured_codes: tuple[Code, ...], ctx: _Context) -> tuple[Limit, str] | None:
    """The limit a clinician's Goal sets for this patient and measure, and where it comes from."""
    side = condition.override
    if side is None:
        return None
    for goal in ctx.goals():
        for target in goal.get("target") or ():
            if not has_code(target.get("measure"), measured_codes):
                continue
            bound = (target.get("detailRange") or {}).get(side)
            if isinstance(bound, dict) and isinstance(bound.get("value"), int | float):
                unit = str(bound.get("code") or bound.get("unit") or "")
                op = "below" if side == "low" else "above"
                return Limit(op, ((unit, float(bound["value"])),)), f"Goal/{goal.get('id')}"
    return None


def _threshold(condition: Threshold, ctx: _Context) -> list[Finding] | None:
    measured = quantity(ctx.resource, condition.component)
    if measured is None:
        return None
    value, unit = measured
    if condition.component is not None:
        component = next(c for c in ctx.resource.get("component") or () if has_code(c.get("code"), condition.component))
        codes = _codes_of(component.get("code"))
        label = condition.label or (component.get("code") or {}).get("text") or condition.component[0][1]
    else:
        codes = _codes_of(ctx.resource.get("code"))
        label = condition.label or (ctx.resource.get("code") or {}).get("text") or (codes[0][1] if codes else "valeur")
    limit, origin = condition.limit, ""
    personal = _override(condition, codes, ctx)
    if personal is not None:
        limit, where = personal
        origin = f" (seuil personnalisé, {where})"
    result = compare(value, unit, limit)
    if result is None:
        log.info("rule %s: %s %s does not convert to %s", ctx.rule.id, value, unit,
                 "/".join(u for u, _ in limit.values))
        return None
    held, limit_unit, limit_value, shown = result
    if not held:
        return None
    return [Finding(label, f"{shown} {limit_unit}".rstrip(), limit.describe(limit_unit, limit_value) + origin,
                    value, unit)]


def _value_in(resource: dict, codes: tuple[Code, ...], unit: str) -> float | None:
    """The value of ``resource`` for one of ``codes`` (its own value or a component's) in ``unit``."""
    measured = quantity(resource) if has_code(resource.get("code"), codes) else quantity(resource, codes)
    if measured is None:
        return None
    return convert(measured[0], measured[1], unit)


def _days(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{seconds / 86400:g} j"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def _trend(condition: Trend, ctx: _Context) -> list[Finding] | None:
    now = _value_in(ctx.resource, condition.codes, condition.unit)
    if now is None:
        return None
    earlier = []
    start = ctx.at - condition.window_s
    for other in ctx.facts.observations(ctx.patient, condition.codes, start, ctx.at):
        if other.get("id") == ctx.resource.get("id") or not in_use(other):
            continue
        when = moment(other)
        value = _value_in(other, condition.codes, condition.unit)
        if when is not None and value is not None and start <= when <= ctx.at:
            earlier.append(value)
    if not earlier:
        return None
    change = now - min(earlier) if condition.direction == "rise" else max(earlier) - now
    change = float(f"{change:.10g}")
    if change <= condition.amount:
        return None
    sign = "+" if condition.direction == "rise" else "-"
    label = condition.label or ("Prise" if condition.direction == "rise" else "Baisse")
    return [Finding(label, f"{sign}{change:g} {condition.unit} en {_days(condition.window_s)}",
                    f"> {condition.amount:g} {condition.unit} en {_days(condition.window_s)}", change, condition.unit)]


def _count(condition: Count, ctx: _Context) -> list[Finding] | None:
    query = condition.query or ctx.rule.query
    start = ctx.at - condition.window_s
    found = ctx.facts.count(query, ctx.patient, condition.date_param, start, ctx.at)
    if found < condition.at_least:
        return None
    label = condition.label or "Nombre"
    return [Finding(label, f"{found} en {_days(condition.window_s)}",
                    f"≥ {condition.at_least} en {_days(condition.window_s)}", float(found))]


_NEWS2_CODES: tuple[Code, ...] = tuple(
    (LOINC, code) for codes in scoring.CODES.values() for code in codes) + ((LOINC, scoring.BP_PANEL),)
_SPO2_CODES: tuple[Code, ...] = tuple((LOINC, c) for c in scoring.CODES[scoring.SPO2])


def hypercapnic(goals: list[dict]) -> str | None:
    """The Goal that puts a patient on SpO2 scale 2: an active target range for SpO2 topping at 92 % or less
    (a clinician's prescribed 88-92 %); its id, or None."""
    for goal in goals:
        for target in goal.get("target") or ():
            high = (target.get("detailRange") or {}).get("high") or {}
            if has_code(target.get("measure"), _SPO2_CODES) and isinstance(high.get("value"), int | float) \
                    and high["value"] <= 92:
                return str(goal.get("id"))
    return None


def vital_signs(observations: list[dict]) -> dict[str, tuple[float, float]]:
    """The latest value of each NEWS2 parameter among ``observations``: parameter -> (time, value)."""
    latest: dict[str, tuple[float, float]] = {}
    for observation in observations:
        if not in_use(observation):
            continue
        when = moment(observation)
        if when is None:
            continue
        for parameter, codes in scoring.CODES.items():
            wanted = tuple((LOINC, c) for c in codes)
            unit = scoring.UNITS.get(parameter, "")
            if parameter == scoring.OXYGEN:
                value = _oxygen(observation)
            else:
                value = _value_in(observation, wanted, unit)
            if value is not None and (parameter not in latest or when >= latest[parameter][0]):
                latest[parameter] = (when, value)
    return latest


def _oxygen(observation: dict) -> float | None:
    """1 when the Observation says the patient breathes supplemental oxygen, 0 when it says air, else None."""
    flow = _value_in(observation, ((LOINC, "3151-8"),), "L/min")
    if flow is not None:
        return 1.0 if flow > 0 else 0.0
    fraction = _value_in(observation, ((LOINC, "3150-0"),), "%")
    if fraction is not None:
        return 1.0 if fraction > 21 else 0.0
    return None


def _news2(condition: News2, ctx: _Context) -> list[Finding] | None:
    start = ctx.at - condition.window_s
    recent = [o for o in ctx.facts.observations(ctx.patient, _NEWS2_CODES, start, ctx.at)
              if o.get("id") != ctx.resource.get("id") and start <= (moment(o) or -1) <= ctx.at]
    latest = vital_signs([*recent, ctx.resource])
    measured = [p for p in latest if p != scoring.OXYGEN]
    if len(measured) < condition.min_parameters:
        return None
    scale_goal = hypercapnic(ctx.goals())
    score = scoring.news2({p: v for p, (_, v) in latest.items()}, scale=2 if scale_goal else 1)
    single = condition.single is not None and score.highest_single >= condition.single
    if score.total < condition.at_least and not single:
        return None
    scale = f"échelle SpO2 {score.scale}" + (f" (Goal/{scale_goal})" if scale_goal else "")
    threshold = f"≥ {condition.at_least}" + (f", ou un paramètre à {condition.single}" if condition.single else "")
    findings = [Finding("Score NEWS2", f"{score.total} ({scale})", threshold, float(score.total))]
    for parameter, points in score.scores.items():
        if points:
            value = latest[parameter][1]
            shown = ("oui" if value else "non") if parameter == scoring.OXYGEN else \
                f"{value:g} {scoring.UNITS[parameter]}"
            findings.append(Finding(f"NEWS2 {scoring.LABELS[parameter]}", shown, f"{points} point(s)", value,
                                    scoring.UNITS.get(parameter, "")))
    return findings


def _text(condition: Text, ctx: _Context) -> list[Finding] | None:
    from . import complaints

    found = complaints.mentions(ctx.resource, condition.concepts)
    if not found:
        return None
    seen: dict[str, str] = {}
    for mention in found:
        seen.setdefault(mention.concept, mention.text)
    names = complaints.labels()
    return [Finding(f"Plainte : {names.get(concept, concept)}", f"« {text} »", "signalée, non niée")
            for concept, text in seen.items()]


__all__ = ["OPERATORS", "Facts", "Finding", "Firing", "evaluate", "fire", "holds", "hypercapnic", "triggered",
           "vital_signs"]
