"""Read and check rule files (``*.rules.yaml``): a broken one is refused with its path, line and reason.

PyYAML reads the file (its marks give the lines); everything a rule says is checked here, before any
resource meets it: the trigger is parsed by the search parser, each condition's keys, operators, units and
windows are checked, and ids must be unique across the files loaded together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from fhir_server.config import ConfigError
from fhir_server.search.errors import SearchError
from fhir_server.search.parser import parse_criteria
from fhir_server.search.query import SearchQuery

from .model import (
    CLASSES,
    OPERATORS,
    PRIORITIES,
    AnyOf,
    Condition,
    Count,
    Escalation,
    Limit,
    News2,
    Rule,
    RuleSet,
    Text,
    Threshold,
    Trend,
    rank,
)

RULES_DIR = Path(__file__).resolve().parent  # the default rule set ships beside the engine
SUFFIX = ".rules.yaml"
# Triage writes these: a rule on them would feed on its own output.
NOT_TRIGGERS = ("Task", "Flag", "AuditEvent", "Subscription")
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|h|d|w)\s*$")
_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class RuleFileError(ConfigError):
    """A rule file Relais cannot use: ``str()`` is ``path:line: reason`` (it stops the start, as a bad setting)."""

    def __init__(self, path: str, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class _Map(dict):
    """A YAML mapping that remembers where it and each of its keys stand."""

    line = 0
    key_lines: dict


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise RuleFileError("", key_node.start_mark.line + 1, f"key {key!r} is given twice")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_window(text: Any) -> float:
    """``"3d"``, ``"72h"``, ``"30min"``, ``"1w"`` in seconds; ValueError otherwise."""
    m = _WINDOW.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"window {text!r} is not a duration like 3d, 72h, 30min")
    return float(m.group(1)) * _SECONDS[m.group(2)]


class _Checker:
    """Turns one file's parsed YAML into rules, raising RuleFileError at the first problem."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, line: int, reason: str) -> RuleFileError:
        return RuleFileError(self.path, line, reason)

    def line_of(self, mapping: Any, key: str | None = None) -> int:
        if isinstance(mapping, _Map):
            return mapping.key_lines.get(key, mapping.line) if key is not None else mapping.line
        return 0

    def mapping(self, value: Any, line: int, what: str) -> _Map:
        if not isinstance(value, _Map):
            raise self.fail(line, f"{what} must be a mapping")
        return value

    def keys(self, m: _Map, allowed: Iterable[str], required: Iterable[str], what: str) -> None:
        allowed = set(allowed)
        for key in m:
            if key not in allowed:
                raise self.fail(self.line_of(m, key), f"{what}: unknown key {key!r} (expected one of "
                                f"{', '.join(sorted(allowed))})")
        for key in required:
            if key not in m:
                raise self.fail(m.line, f"{what}: {key!r} is required")

    def text(self, m: _Map, key: str, what: str) -> str:
        value = m.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(self.line_of(m, key), f"{what}: {key!r} must be a non-empty string")
        return value.strip()

    def number(self, m: _Map, key: str, what: str) -> float:
        value = m.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(self.line_of(m, key), f"{what}: {key!r} must be a number")
        return float(value)

    def window(self, m: _Map, key: str, what: str) -> float:
        try:
            return parse_window(m.get(key))
        except ValueError as exc:
            raise self.fail(self.line_of(m, key), f"{what}: {exc}") from None

    def criteria(self, text: str, line: int, what: str) -> SearchQuery:
        try:
            query = parse_criteria(text, strict=True)
        except SearchError as exc:
            raise self.fail(line, f"{what} {text!r}: {exc}") from None
        if query.resource_type in NOT_TRIGGERS:
            raise self.fail(line, f"{what} {text!r}: no rule on {query.resource_type} (triage writes them)")
        if any(p.chain is not None for clause in query.clauses for p in clause):
            raise self.fail(line, f"{what} {text!r}: chains and _has are not allowed (a trigger is matched on "
                            "the resource alone)")
        return query

    def codes(self, m: _Map, key: str, what: str) -> tuple[tuple[str, str], ...]:
        value = m.get(key)
        items = value if isinstance(value, list) else [value]
        codes = []
        for item in items:
            if not isinstance(item, str) or "|" not in item or not item.partition("|")[2]:
                raise self.fail(self.line_of(m, key), f"{what}: {key!r} takes system|code strings, got {item!r}")
            system, _, code = item.partition("|")
            codes.append((system, code))
        return tuple(codes)

    def limit(self, m: _Map, what: str) -> Limit:
        ops = [key for key in OPERATORS if key in m]
        if len(ops) != 1:
            raise self.fail(m.line, f"{what}: give exactly one of {', '.join(OPERATORS)}")
        op = ops[0]
        value = m[op]
        if isinstance(value, _Map):
            if "unit" in m:
                raise self.fail(self.line_of(m, "unit"), f"{what}: 'unit' goes with a single number, not with a "
                                "value per unit")
            pairs = []
            for unit, number in value.items():
                if isinstance(number, bool) or not isinstance(number, int | float):
                    raise self.fail(self.line_of(value, unit), f"{what}: {op}.{unit} must be a number")
                pairs.append((str(unit), float(number)))
            if not pairs:
                raise self.fail(self.line_of(m, op), f"{what}: {op} names no unit")
            return Limit(op, tuple(pairs))
        number = self.number(m, op, what)
        unit = m.get("unit", "")
        if not isinstance(unit, str):
            raise self.fail(self.line_of(m, "unit"), f"{what}: 'unit' must be a UCUM code string")
        return Limit(op, ((unit, number),))

    def condition(self, raw: Any, line: int, rule_query: SearchQuery) -> Condition:
        m = self.mapping(raw, line, "a condition")
        if len(m) != 1:
            raise self.fail(m.line, "a condition has exactly one kind: value, component, trend, count, news2, "
                            f"text or any (got {', '.join(map(str, m)) or 'none'})")
        [(kind, body)] = m.items()
        at = self.line_of(m, kind)
        if kind == "any":
            if not isinstance(body, list) or len(body) < 2:
                raise self.fail(at, "any: give a list of at least two conditions")
            return AnyOf(tuple(self.condition(c, self.line_of(c) or at, rule_query) for c in body), line=at)
        body = self.mapping(body, at, kind)
        what = f"{kind} condition"
        if kind in ("value", "component"):
            extra = ("code",) if kind == "component" else ()
            self.keys(body, (*OPERATORS, "unit", "override", "label", *extra), extra, what)
            override = body.get("override")
            if override not in (None, "low", "high"):
                raise self.fail(self.line_of(body, "override"), f"{what}: override is low or high")
            component = self.codes(body, "code", what) if kind == "component" else None
            label = body.get("label", "")
            return Threshold(self.limit(body, what), component, str(label), override, at)
        if kind == "trend":
            self.keys(body, ("code", "rise", "drop", "unit", "within", "label"), ("code", "unit", "within"), what)
            directions = [d for d in ("rise", "drop") if d in body]
            if len(directions) != 1:
                raise self.fail(body.line, f"{what}: give exactly one of rise, drop")
            amount = self.number(body, directions[0], what)
            return Trend(self.codes(body, "code", what), directions[0], amount, self.text(body, "unit", what),
                         self.window(body, "within", what), str(body.get("label", "")), at)
        if kind == "count":
            self.keys(body, ("at_least", "within", "of", "date", "label"), ("at_least", "within"), what)
            at_least = body.get("at_least")
            if not isinstance(at_least, int) or isinstance(at_least, bool) or at_least < 1:
                raise self.fail(self.line_of(body, "at_least"), f"{what}: at_least must be a positive integer")
            query = None
            if "of" in body:
                query = self.criteria(self.text(body, "of", what), self.line_of(body, "of"), f"{what}: of")
                if query.resource_type != rule_query.resource_type:
                    raise self.fail(self.line_of(body, "of"), f"{what}: of must search {rule_query.resource_type}")
            date = str(body.get("date", "date"))
            return Count(at_least, self.window(body, "within", what), query, date, str(body.get("label", "")), at)
        if kind == "news2":
            self.keys(body, ("at_least", "single", "within", "min_parameters"), ("at_least",), what)
            single = body.get("single")
            if single is not None and single not in (1, 2, 3):
                raise self.fail(self.line_of(body, "single"), f"{what}: single is a parameter score, 1 to 3")
            minimum = body.get("min_parameters", 4)
            if not isinstance(minimum, int) or not 1 <= minimum <= 7:
                raise self.fail(self.line_of(body, "min_parameters"), f"{what}: min_parameters is 1 to 7")
            window = self.window(body, "within", what) if "within" in body else 3600.0
            return News2(int(self.number(body, "at_least", what)), single, window, minimum, at)
        if kind == "text":
            self.keys(body, ("concepts",), ("concepts",), what)
            concepts = body["concepts"]
            if not isinstance(concepts, list) or not concepts or not all(isinstance(c, str) for c in concepts):
                raise self.fail(self.line_of(body, "concepts"), f"{what}: concepts is a list of concept ids")
            unknown = sorted(set(concepts) - known_concepts())
            if unknown:
                raise self.fail(self.line_of(body, "concepts"), f"{what}: unknown concept(s) {', '.join(unknown)}"
                                " (see rules/complaint_concepts.yaml)")
            return Text(tuple(concepts), at)
        raise self.fail(at, f"unknown condition kind {kind!r} (value, component, trend, count, news2, text, any)")

    def conditions(self, m: _Map, key: str, query: SearchQuery) -> tuple[Condition, ...]:
        raw = m.get(key, [])
        if not isinstance(raw, list):
            raise self.fail(self.line_of(m, key), f"{key!r} must be a list of conditions")
        return tuple(self.condition(c, self.line_of(c) or self.line_of(m, key), query) for c in raw)

    def priority(self, m: _Map, what: str) -> str:
        value = m.get("priority")
        if value not in PRIORITIES:
            raise self.fail(self.line_of(m, "priority"), f"{what}: priority must be one of {', '.join(PRIORITIES)}")
        return value

    def rule(self, raw: Any, line: int) -> Rule:
        m = self.mapping(raw, line, "a rule")
        rid = m.get("id")
        what = f"rule {rid!r}" if isinstance(rid, str) else "a rule"
        self.keys(m, ("id", "version", "title", "trigger", "when", "priority", "class", "message", "sources",
                      "escalate"), ("id", "version", "trigger", "priority", "class", "message", "sources"), what)
        if not isinstance(rid, str) or not _ID.match(rid):
            raise self.fail(self.line_of(m, "id"), f"{what}: id must be lower-case letters, digits, '-' or '.'")
        version = m.get("version")
        if isinstance(version, bool) or not isinstance(version, str | int | float) or not str(version).strip():
            raise self.fail(self.line_of(m, "version"), f"{what}: version must be a string or number")
        query = self.criteria(self.text(m, "trigger", what), self.line_of(m, "trigger"), f"{what}: trigger")
        rule_class = m.get("class")
        if rule_class not in CLASSES:
            raise self.fail(self.line_of(m, "class"), f"{what}: class must be one of {', '.join(CLASSES)}")
        sources = m.get("sources")
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s.strip() for s in sources):
            raise self.fail(self.line_of(m, "sources"), f"{what}: sources must be a non-empty list of references")
        escalations = []
        raw_escalations = m.get("escalate", [])
        if not isinstance(raw_escalations, list):
            raise self.fail(self.line_of(m, "escalate"), f"{what}: escalate must be a list")
        priority = self.priority(m, what)
        for item in raw_escalations:
            e = self.mapping(item, self.line_of(m, "escalate"), f"{what}: an escalation")
            self.keys(e, ("priority", "when", "message"), ("priority", "when"), f"{what}: escalation")
            level = self.priority(e, f"{what}: escalation")
            if rank(level) <= rank(priority):
                raise self.fail(self.line_of(e, "priority"), f"{what}: an escalation raises the priority above "
                                f"{priority}")
            message = self.text(e, "message", what) if "message" in e else None
            escalations.append(Escalation(level, self.conditions(e, "when", query), message))
        return Rule(id=rid, version=str(version).strip(), title=str(m.get("title", rid)), trigger=m["trigger"].strip(),
                    query=query, conditions=self.conditions(m, "when", query), priority=priority,
                    rule_class=rule_class, message=self.text(m, "message", what),
                    sources=tuple(s.strip() for s in sources), escalations=tuple(escalations),
                    path=self.path, line=m.line)


def known_concepts() -> set[str]:
    """The complaint concepts the French text matcher knows (rules/complaint_concepts.yaml)."""
    from . import complaints

    return set(complaints.concepts())


def load_text(text: str, path: str = "<rules>") -> list[Rule]:
    """The rules of one file's text; RuleFileError (path, line, reason) at the first problem."""
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except RuleFileError as exc:
        raise RuleFileError(path, exc.line, exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RuleFileError(path, (mark.line + 1) if mark else 0, f"not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise RuleFileError(path, 0, f"not valid YAML: {exc}") from None
    checker = _Checker(path)
    if not isinstance(document, _Map) or "rules" not in document:
        raise RuleFileError(path, 1, "a rule file is a mapping with a 'rules' list")
    checker.keys(document, ("rules",), ("rules",), "a rule file")
    raw_rules = document["rules"]
    if not isinstance(raw_rules, list):
        raise RuleFileError(path, checker.line_of(document, "rules"), "'rules' must be a list")
    return [checker.rule(item, checker.line_of(item) or checker.line_of(document, "rules")) for item in raw_rules]


def load_file(path: str | Path) -> list[Rule]:
    """The rules of one file (RuleFileError naming it when unreadable or wrong)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(str(path), 0, f"cannot read: {exc}") from None
    return load_text(text, str(path))


def rule_files(directory: str | Path) -> list[Path]:
    """The ``*.rules.yaml`` files of ``directory``, by name."""
    return sorted(Path(directory).glob(f"*{SUFFIX}"))


def load_rules(paths: Iterable[str | Path]) -> RuleSet:
    """The rules of every file; RuleFileError at the first problem, duplicate ids across files included."""
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for path in paths:
        for rule in load_file(path):
            if rule.id in seen:
                first = seen[rule.id]
                raise RuleFileError(str(path), rule.line, f"rule id {rule.id!r} is already defined at "
                                    f"{first.path}:{first.line}")
            seen[rule.id] = rule
            rules.append(rule)
    return RuleSet.of(rules)


def load_directory(directory: str | Path | None = None) -> RuleSet:
    """The rule set of ``directory`` (default: the rules shipped in ``rules/``)."""
    return load_rules(rule_files(directory or RULES_DIR))
