"""Compile the search IR to SQL over ``resources`` and ``search_index``.

Each AND clause becomes ``r.rid IN (SELECT rid FROM search_index WHERE rtype=? AND param=? AND ...)``
(the OR of its predicates inside), so SQLite drives the query from the most selective index and
looks resources up by primary key: a selective search never scans a table. The comparison rules are
those of ``fhir_server.search.matcher`` (tests check both agree on the same data).
"""

from __future__ import annotations

from ..search.errors import SearchError
from ..search.matcher import ap_date_tolerance, ap_number_tolerance, composite_row_kind
from ..search.query import Predicate, SearchQuery
from ..search.units import CANONICAL

DDL = [
    # Covering indexes (rid last): a subquery answers from the index alone, never from the table.
    "CREATE INDEX IF NOT EXISTS si_token ON search_index (rtype, param, code, system, kind, rid)",
    "CREATE INDEX IF NOT EXISTS si_range ON search_index (rtype, param, low, high, kind, rid)",
    "CREATE INDEX IF NOT EXISTS si_text ON search_index (rtype, param, text, kind, rid)",
    # Sorting by a parameter looks up each match's key by (rtype, rid, param).
    "CREATE INDEX IF NOT EXISTS si_sort ON search_index (rtype, rid, param, low, high, code)",
    "CREATE INDEX IF NOT EXISTS resources_by_updated ON resources (rtype, last_updated)",
    # The foundation's placeholder, superseded by si_token.
    "DROP INDEX IF EXISTS search_index_token",
]

# The top of the code point range: every string starting with p sorts between p and p + MAX_CHAR.
MAX_CHAR = "\U0010ffff"


def _prefix_range(column: str, value: str, args: list) -> str:
    args.extend((value, value + MAX_CHAR))
    return f"({column} >= ? AND {column} < ?)"


def _system(system: str | None, args: list, column: str = "system") -> str:
    if system is None:
        return ""
    if system == "":
        return f" AND {column} IS NULL"
    args.append(system)
    return f" AND {column} = ?"


def _date_cond(op: str, slo: float, shi: float, args: list) -> str:
    inside = "(low >= ? AND high <= ?)"
    if op == "eq":
        args.extend((slo, shi))
        return inside
    if op == "ne":
        args.extend((slo, shi))
        return f"NOT {inside}"
    if op == "gt":
        args.append(shi)
        return "high > ?"
    if op == "lt":
        args.append(slo)
        return "low < ?"
    if op == "ge":
        args.extend((shi, slo, shi))
        return f"(high > ? OR {inside})"
    if op == "le":
        args.extend((slo, slo, shi))
        return f"(low < ? OR {inside})"
    if op == "sa":
        args.append(shi)
        return "low > ?"
    if op == "eb":
        args.append(slo)
        return "high < ?"
    if op == "ap":
        tol = ap_date_tolerance(slo, shi)
        args.extend((shi + tol, slo - tol))
        return "(low <= ? AND high >= ?)"
    raise SearchError(f"unknown prefix {op!r}")


def _number_cond(op: str, value: float, low: float, high: float, args: list) -> str:
    if op in ("eq", "ne"):
        args.extend((low, high))
        cond = "(low >= ? AND high < ?)"
        return cond if op == "eq" else f"NOT {cond}"
    simple = {"gt": "high > ?", "sa": "low > ?", "lt": "low < ?", "eb": "high < ?", "ge": "high >= ?", "le": "low <= ?"}
    if op in simple:
        args.append(value)
        return simple[op]
    if op == "ap":
        tol = ap_number_tolerance(value, low, high)
        args.extend((value + tol, value - tol))
        return "(low <= ? AND high >= ?)"
    raise SearchError(f"unknown prefix {op!r}")


def _unit(system: str | None, code: str | None, args: list) -> str:
    sql = ""
    if system is not None:
        sql += " AND system = ?"
        args.append(system)
    if code is not None:
        if system is not None:
            sql += " AND code = ?"
            args.append(code)
        else:
            sql += " AND (code = ? OR text = ?)"
            args.extend((code, code))
    return sql


def _in(column: str, values: tuple, args: list) -> str:
    if not values:
        return "0"
    args.extend(values)
    return f"{column} IN ({','.join('?' * len(values))})"


def _starts(column: str, value: str, args: list) -> str:
    args.extend((len(value), value))
    return f"substr({column}, 1, ?) = ?"


def _ends(column: str, value: str, args: list) -> str:
    args.extend((-len(value), value))
    return f"substr({column}, ?) = ?"


def _composite_second(p: Predicate, args: list) -> str:
    _first, kind, second = p.values
    if kind == "quantity":
        value, low, high, usys, ucode = second
        parts = [_number_cond(p.op, value, low, high, args)]
        if usys is not None and ucode is not None:
            args.append(f"{usys}|{ucode}")
            parts.append("text = ?")
        elif usys is not None:
            parts.append(_starts("text", f"{usys}|", args))
        elif ucode is not None:
            parts.append(_ends("text", f"|{ucode}", args))
        return " AND ".join(parts)
    if kind == "number":
        value, low, high = second
        return _number_cond(p.op, value, low, high, args)
    if kind == "date":
        return _date_cond(p.op, second[0], second[1], args)
    if kind == "token":
        system, code = second
        if code is None:
            return "text IS NOT NULL" if system is None else _starts("text", f"{system}|", args)
        if system is None:
            return _ends("text", f"|{code}", args)
        args.append(f"{system}|{code}")
        return "text = ?"
    if kind == "string":
        return _starts("text", second[0], args)
    raise SearchError(f"composite with a {kind} part is not supported")


def _row_condition(p: Predicate, args: list) -> str:
    """The condition on one search_index row (after rtype and param) that makes ``p`` true."""
    kind, op = p.kind, p.op
    if kind == "token":
        if op in ("eq", "not"):
            system, code = p.values
            sql = "kind = 'token'"
            if code is not None:
                sql += " AND code = ?"
                args.append(code)
            return sql + _system(system, args)
        if op == "text":
            q = p.values[0]
            args.extend((len(q), q, f" {q}"))
            return "kind = 'token' AND (substr(text, 1, ?) = ? OR instr(text, ?) > 0)"
        if op == "in":
            system, codes = p.values
            return "kind = 'token' AND " + _in("code", codes, args) + _system(system, args)
        if op == "of-type":
            tsys, tcode, value = p.values
            args.extend((value, f"{tsys or ''}|{tcode}"))
            return "kind = 'of-type' AND code = ? AND text = ?"
    elif kind == "string":
        q = p.values[0]
        if op == "eq":
            return _prefix_range("code", q, args)
        if op == "contains":
            args.append(q)
            return "instr(code, ?) > 0"
        if op == "exact":
            args.append(q)
            return "text = ?"
    elif kind == "date":
        return "low IS NOT NULL AND " + _date_cond(op, p.values[0], p.values[1], args)
    elif kind == "number":
        value, low, high = p.values
        return "low IS NOT NULL AND " + _number_cond(op, value, low, high, args)
    elif kind == "quantity":
        value, low, high, system, code = p.values
        cond = _number_cond(op, value, low, high, args)
        row_kind = "ucum" if system == CANONICAL else "quantity"
        return f"kind = '{row_kind}' AND low IS NOT NULL AND {cond}" + _unit(system, code, args)
    elif kind == "uri":
        v = p.values[0]
        if op == "eq":
            args.append(v)
            return "code = ?"
        if op == "below":
            return _prefix_range("code", v, args)
        if op == "above":
            args.append(v)
            return "code IS NOT NULL AND substr(?, 1, length(code)) = code"
    elif kind == "reference":
        if op == "eq":
            rtype, rid, url = p.values
            if url is not None:
                args.append(url)
                if rid is None:
                    return "kind = 'reference' AND text = ?"
                args.extend((rid, rtype))
                return "kind = 'reference' AND (text = ? OR (code = ? AND system = ?))"
            args.append(rid)
            sql = "kind = 'reference' AND code = ?"
            if rtype is not None:
                args.append(rtype)
                sql += " AND system = ?"
            return sql
        if op == "in":
            rtype, ids = p.values
            args.append(rtype)
            return "kind = 'reference' AND system = ? AND " + _in("code", ids, args)
        if op == "identifier":
            system, code = p.values
            sql = "kind = 'identifier'"
            if code is not None:
                sql += " AND code = ?"
                args.append(code)
            return sql + _system(system, args)
    elif kind == "composite":
        (system, code), _kind, _second = p.values
        sql = f"kind = '{composite_row_kind(p)}'"
        if code is not None:
            sql += " AND code = ?"
            args.append(code)
        sql += _system(system, args)
        return f"{sql} AND {_composite_second(p, args)}"
    raise SearchError(f"search on {p.param} ({kind}:{op}) is not supported")


def _ids_subquery(resource_type: str, p: Predicate, args: list) -> tuple[str, bool]:
    """A SELECT of the rids for which ``p`` holds, and whether it must be negated (NOT IN)."""
    if p.op == "missing":
        args.extend((resource_type, p.param))
        return "SELECT rid FROM search_index WHERE rtype = ? AND param = ?", p.values[0]
    if p.kind == "has":
        source, ref_param = p.values
        inner_sql, inner_args = _select_ids(p.chain)
        args.extend((source, ref_param, resource_type, *inner_args))
        return (
            "SELECT code FROM search_index WHERE rtype = ? AND param = ? AND kind = 'reference' AND system = ?"
            f" AND rid IN ({inner_sql})",
            False,
        )
    if p.op == "chain":
        (target,) = p.values
        inner_sql, inner_args = _select_ids(p.chain)
        args.extend((resource_type, p.param, target, *inner_args))
        return (
            "SELECT rid FROM search_index WHERE rtype = ? AND param = ? AND kind = 'reference' AND system = ?"
            f" AND code IN ({inner_sql})",
            False,
        )
    negate = p.kind == "token" and p.op == "not"
    args.extend((resource_type, p.param))
    head = "SELECT rid FROM search_index WHERE rtype = ? AND param = ? AND "
    return head + _row_condition(p, args), negate


def _where(query: SearchQuery) -> tuple[str, list]:
    alias = "r"
    args: list = [query.resource_type]
    where = [f"{alias}.rtype = ?", f"{alias}.deleted = 0"]
    for clause in query.clauses:
        positive: list[str] = []
        negative: list[str] = []
        clause_args_pos: list = []
        clause_args_neg: list = []
        for p in clause:
            sub_args: list = []
            sql, negate = _ids_subquery(query.resource_type, p, sub_args)
            if negate:
                negative.append(sql)
                clause_args_neg.extend(sub_args)
            else:
                positive.append(sql)
                clause_args_pos.extend(sub_args)
        parts = []
        if positive:
            parts.append(f"{alias}.rid IN ({' UNION '.join(positive)})")
            args.extend(clause_args_pos)
        for sql in negative:
            parts.append(f"{alias}.rid NOT IN ({sql})")
        args.extend(clause_args_neg)
        where.append(parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")")
    return " AND ".join(where), args


def _select_ids(query: SearchQuery) -> tuple[str, list]:
    """Every matching id of ``query`` (no order, no page): the inner side of chains and _has."""
    # Subqueries never refer to an outer alias, so the inner "r" shadows the outer one harmlessly.
    where, args = _where(query)
    return f"SELECT r.rid FROM resources r WHERE {where}", args


_SORT_KEY = {
    # Ascending sorts use a resource's lowest value, descending ones its highest (R4 search, _sort).
    "date": ("min(low)", "max(high)"),
    "number": ("min(low)", "max(high)"),
    "quantity": ("min(low)", "max(high)"),
}


def _order_by(query: SearchQuery, args: list) -> str:
    from ..search.registry import get_registry  # noqa: PLC0415 - the registry is loaded once anyway

    params = get_registry().params_for(query.resource_type)
    keys = []
    for name, desc in query.sort:
        direction = "DESC" if desc else "ASC"
        if name == "_lastUpdated":
            keys.append(f"r.last_updated {direction}")
            continue
        if name == "_id":
            keys.append(f"r.rid {direction}")
            continue
        sp = params.get(name)
        kind = sp.type if sp else "string"
        asc_expr, desc_expr = _SORT_KEY.get(kind, ("min(code)", "max(code)"))
        expr = desc_expr if desc else asc_expr
        sub = f"(SELECT {expr} FROM search_index s WHERE s.rtype = r.rtype AND s.rid = r.rid AND s.param = ?)"
        # Resources without a value come last in both directions.
        keys.extend((f"{sub} IS NULL", f"{sub} {direction}"))
        args.extend((name, name))
    keys.append("r.rowid ASC" if not query.sort else "r.rid ASC")
    return ", ".join(keys)


def compile_query(query: SearchQuery) -> tuple[str, list]:
    """SELECT of the matching ids, in the query's order, one page."""
    where, args = _where(query)
    order_args: list = []
    order = _order_by(query, order_args)
    return (
        f"SELECT r.rid FROM resources r WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, *order_args, query.count, query.offset],
    )


def compile_count(query: SearchQuery) -> tuple[str, list]:
    """SELECT count(*) of every match."""
    where, args = _where(query)
    return f"SELECT count(*) FROM resources r WHERE {where}", args
