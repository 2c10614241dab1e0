"""Compile the search IR to SQL over ``resources`` and ``search_index``.

Foundation stage: token equality (``_id``, ``identifier``); the search issue widens it.
"""

from __future__ import annotations

from ..search.query import Predicate, SearchQuery

DDL = ["CREATE INDEX IF NOT EXISTS search_index_token ON search_index (rtype, param, code, system)"]


def _predicate(pred: Predicate, params: list) -> str:
    if pred.kind != "token" or pred.op != "eq":
        raise NotImplementedError(f"search on {pred.param} ({pred.kind}:{pred.op}) is not supported yet")
    system, code = pred.values
    sql = "EXISTS (SELECT 1 FROM search_index s WHERE s.rtype=r.rtype AND s.rid=r.rid AND s.param=?"
    params.append(pred.param)
    if code is not None:
        sql += " AND s.code=?"
        params.append(code)
    if system is not None:
        sql += " AND s.system IS ?" if system == "" else " AND s.system=?"
        params.append(None if system == "" else system)
    return sql + ")"


def _where(query: SearchQuery) -> tuple[str, list]:
    params: list = [query.resource_type]
    where = ["r.rtype=?", "r.deleted=0"]
    for clause in query.clauses:
        where.append("(" + " OR ".join(_predicate(p, params) for p in clause) + ")")
    return " AND ".join(where), params


def compile_query(query: SearchQuery) -> tuple[str, list]:
    """SELECT of the matching ids, in a stable order, one page."""
    where, params = _where(query)
    return f"SELECT r.rid FROM resources r WHERE {where} ORDER BY r.rowid LIMIT ? OFFSET ?", [
        *params,
        query.count,
        query.offset,
    ]


def compile_count(query: SearchQuery) -> tuple[str, list]:
    where, params = _where(query)
    return f"SELECT count(*) FROM resources r WHERE {where}", params
