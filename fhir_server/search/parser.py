"""Parse FHIR R4 search parameters into the IR (``SearchQuery``), against the registry.

Operands per predicate kind (``Predicate.values``):

token      eq/not: (system, code), None = any, "" = no system; text: (normalised,); of-type:
           (type system, type code, value); missing: (bool,)
string     eq (starts with) / contains: (normalised,); exact: (as written,)
date       prefix: (low, high) inclusive epoch seconds of the value's precision
number     prefix: (value, low, high) with [low, high) the value's implicit precision range
quantity   prefix: (value, low, high, unit system, unit code), None = any; a UCUM unit arrives in SI
           base units with system ``units.CANONICAL`` (rows of kind "ucum")
reference  eq: (type, id, url) None = any; identifier: (system, value); chain: (type,) + ``chain`` query
uri        eq/above/below: (uri,)
composite  op = prefix of the 2nd part: ((system, code), 2nd kind, 2nd operands)
has        has: (source type, reference param) + ``chain`` query on the source type

Chains and _has resolved ahead (``resolve.inline_chains``) become token ``in`` (system, ids) on
``_id`` and reference ``in`` (type, ids).
"""

from __future__ import annotations

import dataclasses
import math
import re
from decimal import Decimal, InvalidOperation

from .dates import DateFormatError, date_range
from .errors import SearchError, SearchTooCostly
from .limits import DEFAULT_LIMITS, Limits
from .query import Predicate, SearchQuery, SortKey
from .references import TYPE_ID
from .registry import Registry, SearchParam, get_registry
from .text import normalize
from .units import CANONICAL, UCUM, affine

PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
SUMMARY = ("true", "false", "text", "data", "count")
TOTAL = ("accurate", "none", "estimate")

# Parameters the REST layer handles (format, pretty printing) or the engine deliberately ignores.
_TRANSPORT = {"_format", "_pretty"}
_UNSUPPORTED = {"_text", "_content", "_list", "_query", "_filter", "_contained", "_containedType"}

_MODIFIERS = {
    "token": {"not", "text", "missing", "of-type"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},
    "uri": {"missing", "above", "below"},
    "composite": {"missing"},
}


# --- escaping --------------------------------------------------------------------------------------


def split_escaped(value: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not escaped by a backslash; parts keep their escapes."""
    parts, cur, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            cur.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def unescape(value: str) -> str:
    r"""``\,`` ``\$`` ``\|`` ``\\`` to the plain character."""
    return re.sub(r"\\([,$|\\])", r"\1", value)


# --- values --------------------------------------------------------------------------------------


def _prefix(value: str, allowed: bool = True) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-+."):
        if not allowed:
            raise SearchError(f"prefix {value[:2]!r} is not allowed here")
        return value[:2], value[2:]
    return "eq", value


def _date(value: str) -> tuple[float, float]:
    try:
        return date_range(value)
    except DateFormatError as e:
        raise SearchError(f"invalid date {value!r}: expected YYYY, YYYY-MM, YYYY-MM-DD or a dateTime") from e


def number_range(text: str) -> tuple[float, float, float]:
    """(value, low, high) where [low, high) is the implicit range of the value's significant digits."""
    try:
        d = Decimal(text)
    except InvalidOperation as e:
        raise SearchError(f"invalid number {text!r}") from e
    if not d.is_finite():
        raise SearchError(f"invalid number {text!r}")
    try:
        half = Decimal(1).scaleb(d.as_tuple().exponent) / 2
        value, low, high = float(d), float(d - half), float(d + half)
    except ArithmeticError as e:  # 1e999999999: beyond the decimal context's exponents
        raise SearchError(f"number {text!r} is beyond the numbers this server stores") from e
    if not all(math.isfinite(x) for x in (value, low, high)):
        # the index holds doubles (fhir_server/limits.py refuses larger values on write): nothing can match
        raise SearchError(f"number {text!r} is beyond the numbers this server stores (an IEEE 754 double)")
    return value, low, high


def _token_value(raw: str) -> tuple[str | None, str | None]:
    parts = split_escaped(raw, "|")
    if len(parts) == 1:
        return None, unescape(parts[0]) or None
    if len(parts) > 2:
        # A code may hold bars only when escaped; a third part is a malformed token.
        raise SearchError(f"invalid token {raw!r}: use system|code")
    system, code = unescape(parts[0]), unescape(parts[1])
    return system, (code or None)


def _quantity_value(raw: str) -> tuple[str, tuple]:
    parts = split_escaped(raw, "|")
    if len(parts) not in (1, 3):
        raise SearchError(f"invalid quantity {raw!r}: use [prefix]number or [prefix]number|system|code")
    op, num = _prefix(unescape(parts[0]))
    value, low, high = number_range(num)
    system = code = None
    if len(parts) == 3:
        system = unescape(parts[1]) or None
        code = unescape(parts[2]) or None
    if system == UCUM and code is not None:
        # A UCUM unit is searched in SI base units, against the canonical rows extraction adds.
        conv = affine(code)
        if conv is not None:
            a, b, unit = conv
            return op, (a * value + b, a * low + b, a * high + b, CANONICAL, unit)
    return op, (value, low, high, system, code)


_ABSOLUTE = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.I)


def _reference_value(raw: str, type_modifier: str | None) -> tuple:
    value = unescape(raw)
    if _ABSOLUTE.match(value) or value.startswith("urn:"):
        m = TYPE_ID.search(value)
        if m:
            return (m.group(1), m.group(2), value)
        return (None, None, value)
    m = TYPE_ID.fullmatch(value) if "/" in value else None
    if m:
        if type_modifier and m.group(1) != type_modifier:
            raise SearchError(f"reference {value!r} does not match the modifier :{type_modifier}")
        return (m.group(1), m.group(2), None)
    if "/" in value:
        raise SearchError(f"invalid reference {value!r}: use Type/id, id or an absolute URL")
    return (type_modifier, value, None)


# --- the parser ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, registry: Registry, strict: bool, limits: Limits = DEFAULT_LIMITS):
        self.registry = registry
        self.strict = strict
        self.limits = limits
        self.warnings: list[str] = []
        self.depth = 0  # references followed by the chain or _has being parsed
        self.has_depth = 0  # _has nested in _has
        self.values = 0  # values parsed so far, chains included

    def count_values(self, n: int) -> None:
        """``n`` more predicates: each value of a comma-separated list, each part of a union parameter, each
        candidate type of a chain; SQLite unites at most 500 in one clause."""
        self.values += n
        if self.values > self.limits.values:
            raise SearchTooCostly(f"a search takes at most {self.limits.values} values in all (each of a"
                                  " comma-separated list, each part of a union parameter and each candidate type of"
                                  " a chain counts one): split it")

    def follow(self) -> None:
        """One more reference followed (a chain link or a _has): refused past the chain depth limit."""
        self.depth += 1
        if self.depth > self.limits.chain_depth:
            raise SearchTooCostly(f"a chain or _has follows at most {self.limits.chain_depth} references")

    def warn_or_raise(self, message: str) -> None:
        if self.strict:
            raise SearchError(message)
        self.warnings.append(message)

    def param(self, resource_type: str, name: str) -> SearchParam | None:
        return self.registry.params_for(resource_type).get(name)

    def clauses(self, resource_type: str, name: str, value: str) -> list[tuple[Predicate, ...]]:
        """The AND clauses one ``name=value`` pair contributes (usually one), counted against the values limit."""
        found = self.pair_clauses(resource_type, name, value)
        self.count_values(sum(len(clause) for clause in found))
        return found

    def pair_clauses(self, resource_type: str, name: str, value: str) -> list[tuple[Predicate, ...]]:
        if name.startswith("_has:"):
            return [self.has(resource_type, name, value)]
        head, dot, rest = name.partition(".")
        pname, _, modifier = head.partition(":")
        sp = self.param(resource_type, pname)
        if sp is None:
            self.warn_or_raise(f"unknown search parameter {pname!r} for {resource_type}: ignored")
            return []
        if dot:
            return [self.chain(sp, modifier or None, rest, value)]
        if value == "":
            self.warnings.append(f"empty value for {name!r}: ignored")
            return []
        found = self.value_clauses(sp, modifier, name, value)
        return _over_union(found, sp.union_of) if sp.union_of else found

    def value_clauses(self, sp: SearchParam, modifier: str, name: str, value: str) -> list[tuple[Predicate, ...]]:
        """The clauses of ``sp[:modifier]=value`` (no chain), on ``sp`` itself."""
        if modifier and modifier not in _MODIFIERS.get(sp.type, set()):
            if sp.type == "reference" and modifier[:1].isupper():
                return [self.reference(sp, modifier, value)]
            raise SearchError(f"modifier :{modifier} is not supported on {sp.type} parameter {sp.name!r}")
        if modifier == "missing":
            if value not in ("true", "false"):
                raise SearchError(f"{name} takes true or false")
            return [(Predicate(sp.name, sp.type, "missing", (value == "true",)),)]
        raws = split_escaped(value, ",")
        if len(raws) > self.limits.values:  # refused before parsing them all
            self.count_values(len(raws))
        if sp.type == "token" and modifier == "not":
            # code:not=a,b means neither a nor b: one NOT per value, all of them AND-ed.
            return [(Predicate(sp.name, "token", "not", _token_value(r)),) for r in raws]
        return [tuple(self.predicate(sp, modifier or None, r) for r in raws)]

    def predicate(self, sp: SearchParam, modifier: str | None, raw: str) -> Predicate:
        kind = sp.type
        if kind == "token":
            if modifier == "text":
                return Predicate(sp.name, kind, "text", (normalize(unescape(raw)),))
            if modifier == "of-type":
                parts = split_escaped(raw, "|")
                if len(parts) != 3 or not parts[1] or not parts[2]:
                    raise SearchError(f"{sp.name}:of-type takes system|code|value, got {raw!r}")
                return Predicate(sp.name, kind, "of-type", tuple(unescape(p) or None for p in parts))
            return Predicate(sp.name, kind, "eq", _token_value(raw))
        if kind == "string":
            text = unescape(raw)
            if modifier == "exact":
                return Predicate(sp.name, kind, "exact", (text,))
            return Predicate(sp.name, kind, modifier or "eq", (normalize(text),))
        if kind == "date":
            op, text = _prefix(unescape(raw))
            return Predicate(sp.name, kind, op, _date(text))
        if kind == "number":
            op, text = _prefix(unescape(raw))
            return Predicate(sp.name, kind, op, number_range(text))
        if kind == "quantity":
            op, values = _quantity_value(raw)
            return Predicate(sp.name, kind, op, values)
        if kind == "reference":
            if modifier == "identifier":
                return Predicate(sp.name, kind, "identifier", _token_value(raw))
            return self.reference_predicate(sp, None, raw)
        if kind == "uri":
            return Predicate(sp.name, kind, modifier or "eq", (unescape(raw),))
        if kind == "composite":
            return self.composite(sp, raw)
        raise SearchError(f"search on {kind} parameter {sp.name!r} is not supported")

    def reference(self, sp: SearchParam, type_modifier: str, value: str) -> tuple[Predicate, ...]:
        if sp.targets and type_modifier not in sp.targets:
            raise SearchError(f"{sp.name} cannot refer to {type_modifier} (targets: {', '.join(sp.targets)})")
        return tuple(self.reference_predicate(sp, type_modifier, r) for r in split_escaped(value, ","))

    def reference_predicate(self, sp: SearchParam, type_modifier: str | None, raw: str) -> Predicate:
        values = _reference_value(raw, type_modifier)
        if values[0] and sp.targets and values[0] not in sp.targets and values[2] is None:
            raise SearchError(f"{sp.name} cannot refer to {values[0]} (targets: {', '.join(sp.targets)})")
        return Predicate(sp.name, "reference", "eq", values)

    def chain(self, sp: SearchParam, type_modifier: str | None, rest: str, value: str) -> tuple[Predicate, ...]:
        """``subject:Patient.name=x``: one predicate per candidate target type, each with its inner query."""
        if sp.type != "reference":
            raise SearchError(f"cannot chain on {sp.type} parameter {sp.name!r}")
        inner_name = rest.partition(".")[0].partition(":")[0]
        if type_modifier:
            if sp.targets and type_modifier not in sp.targets:
                raise SearchError(f"{sp.name} cannot refer to {type_modifier}")
            candidates = [type_modifier]
        else:
            candidates = [t for t in sp.targets if self.param(t, inner_name) is not None]
        candidates = [t for t in candidates if self.param(t, inner_name) is not None]
        if not candidates:
            raise SearchError(f"chained parameter {sp.name}.{rest}: no target type of {sp.name} has {inner_name!r}")
        out = []
        self.follow()
        for target in candidates:
            inner = self.query(target, [(rest, value)])
            if inner.clauses:
                out.append(Predicate(sp.name, "reference", "chain", (target,), inner))
        self.depth -= 1
        if not out:
            raise SearchError(f"chained parameter {sp.name}.{rest} has no usable value")
        return tuple(out)

    def has(self, resource_type: str, name: str, value: str) -> tuple[Predicate, ...]:
        """``_has:Observation:patient:code=x``: resources some Observation.patient points at, with code x."""
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise SearchError(f"invalid {name!r}: use _has:Type:reference-parameter:parameter")
        _, source, ref_name, inner_name = parts
        ref = self.param(source, ref_name)
        if ref is None or ref.type != "reference":
            raise SearchError(f"{source} has no reference parameter {ref_name!r}")
        if ref.targets and resource_type not in ref.targets:
            raise SearchError(f"{source}.{ref_name} cannot refer to {resource_type}")
        self.follow()
        self.has_depth += 1
        if self.has_depth > self.limits.has_depth:
            raise SearchTooCostly(f"_has nests at most {self.limits.has_depth} levels deep")
        inner = self.query(source, [(inner_name, value)])
        self.depth -= 1
        self.has_depth -= 1
        if not inner.clauses:
            raise SearchError(f"{name} has no usable value")
        return (Predicate("_has", "has", "has", (source, ref_name), inner),)

    def composite(self, sp: SearchParam, raw: str) -> Predicate:
        parts = split_escaped(raw, "$")
        if len(sp.components) != 2 or len(parts) != 2:
            raise SearchError(f"{sp.name} takes two values joined by $, got {raw!r}")
        first_kind, second_kind = sp.components[0].kind, sp.components[1].kind
        if first_kind != "token":
            raise SearchError(f"composite parameter {sp.name!r} is not supported")
        first = _token_value(parts[0])
        op = "eq"
        if second_kind == "token":
            second: tuple = _token_value(parts[1])
        elif second_kind == "quantity":
            op, second = _quantity_value(parts[1])
        elif second_kind == "date":
            op, text = _prefix(unescape(parts[1]))
            second = _date(text)
        elif second_kind == "string":
            second = (normalize(unescape(parts[1])),)
        elif second_kind == "number":
            op, text = _prefix(unescape(parts[1]))
            second = number_range(text)
        else:
            raise SearchError(f"composite parameter {sp.name!r} is not supported")
        return Predicate(sp.name, "composite", op, (first, second_kind, second))

    # --- result controls -----------------------------------------------------------------------

    def query(
        self,
        resource_type: str,
        params: list[tuple[str, str]],
        default_count: int = 20,
        max_count: int = 1000,
    ) -> SearchQuery:
        clauses: list[tuple[Predicate, ...]] = []
        sort: list[SortKey] = []
        count, offset, total = default_count, 0, "accurate"
        summary: str | None = None
        elements: list[str] = []
        include: list[str] = []
        revinclude: list[str] = []
        include_it: list[str] = []
        revinclude_it: list[str] = []
        for name, value in params:
            base, _, modifier = name.partition(":")
            if base == "_count":
                count = self.integer(name, value)
                if count > max_count:
                    self.warnings.append(f"_count={count} above the maximum: {max_count} used")
                    count = max_count
            elif base == "_offset":
                offset = self.integer(name, value)
            elif base == "_sort":
                sort.extend(self.sort(resource_type, value, len(sort)))
            elif base == "_total":
                if value not in TOTAL:
                    raise SearchError(f"_total takes one of {', '.join(TOTAL)}")
                total = value
            elif base == "_summary":
                if value not in SUMMARY:
                    raise SearchError(f"_summary takes one of {', '.join(SUMMARY)}")
                summary = value
            elif base == "_elements":
                elements.extend(e.strip() for e in value.split(",") if e.strip())
            elif base in ("_include", "_revinclude"):
                if modifier not in ("", "iterate", "recurse"):
                    raise SearchError(f"{name}: unknown modifier")
                for v in split_escaped(value, ","):
                    if len(include) + len(revinclude) >= self.limits.includes:
                        raise SearchTooCostly(f"a search takes at most {self.limits.includes} _include and _revinclude"
                                          " values")
                    spec = self.include(resource_type, v, reverse=base == "_revinclude")
                    (revinclude if base == "_revinclude" else include).append(spec)
                    if modifier:
                        (revinclude_it if base == "_revinclude" else include_it).append(spec)
            elif base in _TRANSPORT:
                continue
            elif base in _UNSUPPORTED:
                self.warn_or_raise(f"search parameter {base!r} is not supported: ignored")
            else:
                clauses.extend(self.clauses(resource_type, name, value))
        return SearchQuery(
            resource_type=resource_type,
            clauses=tuple(clauses),
            sort=tuple(sort),
            count=count,
            offset=offset,
            total=total,
            summary=summary,
            elements=tuple(elements),
            include=tuple(include),
            revinclude=tuple(revinclude),
            include_iterate=tuple(include_it),
            revinclude_iterate=tuple(revinclude_it),
            warnings=tuple(self.warnings),
        )

    @staticmethod
    def integer(name: str, value: str) -> int:
        # isdigit alone accepts "²"; nine digits keep OFFSET within SQLite's integers.
        if not (value.isascii() and value.isdigit() and len(value) <= 9):
            raise SearchError(f"{name} takes a non-negative integer below 10^9, got {value!r}")
        return int(value)

    def sort(self, resource_type: str, value: str, before: int = 0) -> list[SortKey]:
        """The keys of one ``_sort`` value; ``before``: keys of earlier ``_sort`` parameters (all count)."""
        keys = [key.strip() for key in value.split(",") if key.strip()]
        if before + len(keys) > self.limits.sort_keys:
            raise SearchTooCostly(f"_sort takes at most {self.limits.sort_keys} keys")
        out = []
        for key in keys:
            desc = key.startswith("-")
            pname = key[1:] if desc else key
            sp = self.param(resource_type, pname)
            if sp is None:
                self.warn_or_raise(f"unknown sort parameter {pname!r} for {resource_type}: ignored")
                continue
            if sp.type == "composite":
                raise SearchError(f"cannot sort on composite parameter {pname!r}")
            if len(sp.union_of) == 1:
                pname = sp.union_of[0]  # the same values under another name
            elif sp.union_of:
                self.warn_or_raise(f"cannot sort on {pname!r}: sort on one of {', '.join(sp.union_of)}")
                continue
            out.append(SortKey(pname, desc, sp.type))
        return out

    def include(self, resource_type: str, value: str, reverse: bool) -> str:
        if value == "*":
            return value
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise SearchError(f"invalid include {value!r}: use Type:parameter[:TargetType]")
        source, pname = parts[0], parts[1]
        sp = self.param(source, pname)
        if sp is None or sp.type != "reference":
            raise SearchError(f"{source} has no reference parameter {pname!r}")
        # A source other than the searched type is legal: it applies to resources included by :iterate.
        if len(parts) == 3 and sp.targets and parts[2] not in sp.targets:
            raise SearchError(f"{source}.{pname} cannot refer to {parts[2]}")
        return value


def _over_union(clauses: list[tuple[Predicate, ...]], params: tuple[str, ...]) -> list[tuple[Predicate, ...]]:
    """Clauses on a union parameter (combo-code) as clauses on its parts (code, component-code).

    A value found under any part satisfies a positive test: its predicates are OR-ed within the
    clause. A negative test (``:missing=true``, ``:not``) must hold for every part: one clause each.
    """
    out: list[tuple[Predicate, ...]] = []
    for clause in clauses:
        negative = all(p.op == "not" or (p.op == "missing" and p.values == (True,)) for p in clause)
        if negative:
            out.extend(tuple(dataclasses.replace(p, param=name) for p in clause) for name in params)
        else:
            out.append(tuple(dataclasses.replace(p, param=name) for p in clause for name in params))
    return out


def parse(
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    default_count: int = 20,
    max_count: int = 1000,
    strict: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> SearchQuery:
    """The IR of a search on ``resource_type``; raises ``SearchError`` for bad values (unknown names if strict)
    and for a search larger than ``limits``."""
    given = sum(1 for name, _value in params if name not in _TRANSPORT)
    if given > limits.parameters:
        raise SearchTooCostly(f"a search takes at most {limits.parameters} parameters, got {given}")
    p = _Parser(get_registry(), strict, limits)
    return p.query(resource_type, params, default_count, max_count)


def parse_criteria(criteria: str, *, strict: bool = True) -> SearchQuery:
    """``Observation?code=...&date=ge2026`` (a Subscription criteria, a rule trigger) as a query."""
    from urllib.parse import parse_qsl  # noqa: PLC0415

    resource_type, _, query_string = criteria.strip().lstrip("/").partition("?")
    if not resource_type or not resource_type[:1].isupper() or "/" in resource_type:
        raise SearchError(f"criteria {criteria!r} must start with a resource type: Type?name=value")
    return parse(resource_type, parse_qsl(query_string, keep_blank_values=True), strict=strict)
