"""Compile the search IR to SQL over ``resources`` and ``search_index``.

Each AND clause becomes ``r.key IN (SELECT key FROM search_index WHERE rtype=? AND param=? AND ...)``
(the OR of its predicates inside), so SQLite drives the query from the most selective index and
looks resources up by their integer key: a selective search never scans a table. The comparison rules are
those of ``fhir_server.search.matcher`` (tests check both agree on the same data).
"""

from __future__ import annotations

from ..search.errors import SearchError
from ..search.matcher import ap_date_tolerance, ap_number_tolerance, composite_row_kind
from ..search.query import Predicate, SearchQuery
from ..search.text import normalize
from ..search.units import CANONICAL
from .sqlite_schema import RANGED


def _id_condition(p: Predicate, alias: str, args: list) -> str:
    """``p`` on ``_id`` as a condition on ``resources`` (``alias``: "" or "r."), as the matcher reads an _id
    row (no system)."""
    column = alias + "rid"
    if p.op == "missing":
        return "0" if p.values[0] else "1"
    if p.op in ("eq", "not"):
        system, code = p.values
        codes: tuple = () if code is None else (code,)
    elif p.op == "in":
        system, codes = p.values
        if not codes:  # an id list that came out empty (a chain or _has run ahead): nothing matches
            return "0"
    else:  # :text, :of-type: an _id has neither a display nor a type
        return "1" if p.op == "not" else "0"
    if system:  # an id has no system: "s|x" matches nothing
        sql = "0"
    elif not codes:
        sql = "1"
    else:
        sql = _in(column, tuple(codes), args)
    return f"NOT ({sql})" if p.op == "not" else sql


def _last_updated_condition(p: Predicate, alias: str, args: list) -> str:
    """``p`` on ``_lastUpdated`` as a condition on the range ``resources`` keeps (updated_low/high)."""
    low, high = alias + "updated_low", alias + "updated_high"
    if p.op == "missing":
        return f"{low} IS NULL" if p.values[0] else f"{low} IS NOT NULL"
    # deleted: so that a driving list walks resources_recent (rtype, deleted, updated_low).
    return f"{alias}deleted = 0 AND " + _date_cond(p.op, p.values[0], p.values[1], args, low, high)


# Parameters answered from ``resources`` itself, each with its condition on its columns: their rows
# are not stored (sqlite.py drops them). Every resource had an _id and a _lastUpdated row, three or
# four B-tree entries each for what ``resources`` holds. _id alone, over HTTP, 4 interleaved rounds:
# server CPU a read (and its AuditEvent) 1.21 -> 1.11 ms, reads 1,264 -> 1,384/s. _id rows stored
# before stay until the next update of their resource (nothing reads them); _lastUpdated rows are
# moved into ``resources`` at start (sqlite_migrations.move_last_updated).
FROM_RESOURCES = {"_id": _id_condition, "_lastUpdated": _last_updated_condition}


# The top of the code point range: every string starting with p sorts between p and p + MAX_CHAR.
MAX_CHAR = "\U0010ffff"


def _prefix_range(column: str, value: str, args: list) -> str:
    args.extend((value, value + MAX_CHAR))
    return f"({column} >= ? AND {column} < ?)"


def _coded(row_kind: str, system: str | None, code: str | None, args: list) -> str:
    """Rows of ``row_kind`` with ``system|code`` (either may be None: any)."""
    sql = f"kind = '{row_kind}'"
    if code is not None:
        sql += " AND code = ?"
        args.append(code)
    return sql + _system(system, args)


def _system(system: str | None, args: list, column: str = "system") -> str:
    if system is None:
        return ""
    if system == "":
        return f" AND {column} IS NULL"
    args.append(system)
    return f" AND {column} = ?"


def _date_cond(op: str, slo: float, shi: float, args: list, low: str = "low", high: str = "high") -> str:
    # Stored ranges have low <= high, so bounds on "low" implied by each rule are added: they make
    # the index range on (param, low) narrow instead of running to the end of the parameter.
    inside = f"({low} >= ? AND {high} <= ?)"
    if op == "eq":
        args.extend((slo, shi, shi))
        return f"({inside} AND {low} <= ?)"
    if op == "ne":
        args.extend((slo, shi))
        return f"NOT {inside}"
    if op == "gt":
        args.append(shi)
        return f"{high} > ?"
    if op == "lt":
        args.append(slo)
        return f"{low} < ?"
    if op == "ge":
        args.extend((shi, slo, shi))
        return f"({high} > ? OR {inside})"
    if op == "le":
        args.extend((slo, slo, shi, shi))
        return f"(({low} < ? OR {inside}) AND {low} <= ?)"
    if op == "sa":
        args.append(shi)
        return f"{low} > ?"
    if op == "eb":
        args.extend((slo, slo))
        return f"({high} < ? AND {low} < ?)"
    if op == "ap":
        tol = ap_date_tolerance(slo, shi)
        args.extend((shi + tol, slo - tol))
        return f"({low} <= ? AND {high} >= ?)"
    raise SearchError(f"unknown prefix {op!r}")


def _number_cond(op: str, value: float, low: float, high: float, args: list) -> str:
    if op == "eq":
        args.extend((low, high, high))
        return "(low >= ? AND high < ? AND low < ?)"
    if op == "ne":
        args.extend((low, high))
        return "NOT (low >= ? AND high < ?)"
    if op == "eb":
        args.extend((value, value))
        return "(high < ? AND low < ?)"
    simple = {"gt": "high > ?", "sa": "low > ?", "lt": "low < ?", "ge": "high >= ?", "le": "low <= ?"}
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
            return _coded("token", *p.values, args)
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
            # An exact match has the same normalised form: that part walks the index.
            args.extend((normalize(q), q))
            return "code = ? AND text = ?"
    elif kind == "date":
        return f"{RANGED} AND " + _date_cond(op, p.values[0], p.values[1], args)
    elif kind == "number":
        value, low, high = p.values
        return f"{RANGED} AND " + _number_cond(op, value, low, high, args)
    elif kind == "quantity":
        value, low, high, system, code = p.values
        cond = _number_cond(op, value, low, high, args)
        if system == CANONICAL:
            return f"kind = 'ucum' AND {cond}" + _unit(system, code, args)
        return f"{RANGED} AND kind = 'quantity' AND {cond}" + _unit(system, code, args)
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
            return _coded("identifier", *p.values, args)
    elif kind == "composite":
        (system, code), _kind, _second = p.values
        sql = f"kind = '{composite_row_kind(p)}'"
        if code is not None:
            sql += " AND code = ?"
            args.append(code)
        sql += _system(system, args)
        return f"{sql} AND {_composite_second(p, args)}"
    raise SearchError(f"search on {p.param} ({kind}:{op}) is not supported")


def _cost(p: Predicate) -> int | None:
    """How selective ``p`` likely is as the driving clause (lower is better); None if it cannot drive."""
    if p.op == "missing" or (p.kind == "token" and p.op == "not"):
        return None
    if p.kind == "has":
        return 3
    if p.op == "chain":
        return 5
    if p.param == "_id":
        return 0
    if p.kind == "reference" and p.op in ("eq", "in"):
        return 0 if p.values[1] else 6
    if p.kind in ("token", "reference", "uri") and p.op in ("eq", "in", "identifier", "of-type"):
        code = p.values[1] if p.kind in ("token",) or p.op == "identifier" else p.values[0]
        return 1 if code is not None else 6
    if p.kind == "composite":
        return 2 if p.values[0][1] is not None else 6
    if p.kind == "string" and p.op in ("eq", "exact"):
        return 3
    if p.op == "eq":
        return 4
    return 7


def _driver(p: Predicate, resource_type: str, args: list) -> str:
    """A SELECT of the keys for which positive ``p`` holds (materialised once, drives the key lookup)."""
    if p.kind == "has":
        _source, ref_param = p.values
        inner_sql, inner_args = _select_ids(p.chain, "r.key")
        args.extend((resource_type, *inner_args, ref_param, resource_type))
        # From each inner match to what its reference parameter points at: one probe per match.
        return (
            "SELECT key FROM resources WHERE rtype = ? AND rid IN (SELECT code FROM search_index INDEXED BY si_probe"
            f" WHERE key IN ({inner_sql}) AND param = ? AND kind = 'reference' AND system = ?)"
        )
    if p.param in FROM_RESOURCES:
        args.append(resource_type)
        return "SELECT key FROM resources WHERE rtype = ? AND " + FROM_RESOURCES[p.param](p, "", args)
    args.extend((resource_type, p.param))
    return "SELECT key FROM search_index WHERE rtype = ? AND param = ? AND " + _condition(p, args)


def _condition(p: Predicate, args: list) -> str:
    """The row condition of ``p`` after rtype and param, chains included."""
    if p.op == "chain":
        (target,) = p.values
        inner_sql, inner_args = _select_ids(p.chain)
        args.extend((target, *inner_args))
        return f"kind = 'reference' AND system = ? AND code IN ({inner_sql})"
    return _row_condition(p, args)


def _probe(p: Predicate, args: list) -> str:
    """``p`` as a correlated test of the current resource (an index probe by key and param)."""
    if p.param in FROM_RESOURCES:
        return FROM_RESOURCES[p.param](p, "r.", args)
    # INDEXED BY: without statistics SQLite may prefer a range on "low" over the key, one scan per row.
    head = "SELECT 1 FROM search_index s INDEXED BY si_probe WHERE s.key = r.key AND s.param = ?"
    args.append(p.param)
    if p.op == "missing":
        return f"{'NOT ' if p.values[0] else ''}EXISTS ({head})"
    sql = f"EXISTS ({head} AND {_condition(p, args)})"
    return f"NOT {sql}" if p.kind == "token" and p.op == "not" else sql


def _clause_probe(clause: tuple[Predicate, ...], resource_type: str, args: list) -> str:
    parts = []
    for p in clause:
        if p.kind == "has":
            parts.append(f"r.key IN ({_driver(p, resource_type, args)})")
        else:
            parts.append(_probe(p, args))
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _where(query: SearchQuery) -> tuple[str, list, bool]:
    """WHERE of ``query`` over ``resources r``, its arguments, and whether an id list drives it.

    The likely most selective clause becomes ``r.key IN (...)``: SQLite looks its resources up by
    key, and every other clause is a probe of one candidate's rows by (key, param).
    Searches are mostly one patient's data, where the patient reference selects a few dozen rows
    and a date window would select most of the table: the list must not be the window.
    """
    args: list = [query.resource_type]
    where = ["r.rtype = ?"]
    best, best_cost = None, None
    for i, clause in enumerate(query.clauses):
        costs = [_cost(p) for p in clause]
        if any(c is None for c in costs):
            continue
        cost = max(costs) + (len(clause) > 1)  # type: ignore[type-var]
        if best_cost is None or cost < best_cost:
            best, best_cost = i, cost
    lists = {best} if best is not None else set()
    # With an id list, "+" keeps SQLite from preferring the (rtype, deleted) index to it.
    where.append("+r.deleted = 0" if lists else "r.deleted = 0")
    for i, clause in enumerate(query.clauses):
        if i in lists:
            subs = [_driver(p, query.resource_type, args) for p in clause]
            where.append(f"r.key IN ({' UNION '.join(subs)})")
        else:
            where.append(_clause_probe(clause, query.resource_type, args))
    return " AND ".join(where), args, bool(lists)


def _select_ids(query: SearchQuery, column: str = "r.rid") -> tuple[str, list]:
    """Every match of ``query``, as ``column`` (no order, no page): the inner side of chains and _has."""
    # Subqueries never refer to an outer alias, so the inner "r" shadows the outer one harmlessly.
    where, args, _driven = _where(query)
    return f"SELECT {column} FROM resources r WHERE {where}", args


_SORT_KEY = {
    # Ascending sorts use a resource's lowest value, descending ones its highest (R4 search, _sort).
    "date": ("min(low)", "max(high)"),
    "number": ("min(low)", "max(high)"),
    "quantity": ("min(low)", "max(high)"),
}


def _order_by(query: SearchQuery, args: list, driven: bool) -> str:
    # With a driving clause, sorting its few matches beats walking an index in order ("+" hides it).
    plus = "+" if driven else ""
    keys = []
    for name, desc, kind in query.sort:
        direction = "DESC" if desc else "ASC"
        if name == "_lastUpdated":
            keys.append(f"{plus}r.updated_low {direction}")
            continue
        if name == "_id":
            keys.append(f"{plus}r.rid {direction}")
            continue
        asc_expr, desc_expr = _SORT_KEY.get(kind, ("min(code)", "max(code)"))
        expr = desc_expr if desc else asc_expr
        args.append(name)
        # Resources without a value come last in both directions.
        keys.append(
            f"(SELECT {expr} FROM search_index s INDEXED BY si_probe"
            " WHERE s.key = r.key AND s.param = ?)"
            f" {direction} NULLS LAST"
        )
    keys.append(f"{plus}r.key ASC" if not query.sort else f"{plus}r.rid ASC")
    return ", ".join(keys)


def compile_query(query: SearchQuery) -> tuple[str, list]:
    """SELECT of the matching ids, in the query's order, one page."""
    where, args, driven = _where(query)
    order_args: list = []
    order = _order_by(query, order_args, driven)
    return (
        f"SELECT r.rid FROM resources r WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, *order_args, query.count, query.offset],
    )


def compile_count(query: SearchQuery) -> tuple[str, list]:
    """SELECT count(*) of every match."""
    where, args, _driven = _where(query)
    return f"SELECT count(*) FROM resources r WHERE {where}", args
