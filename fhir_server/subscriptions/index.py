"""The active Subscriptions of a store, by resource type, kept in memory and rebuilt when any changes.

``build`` is pure (stored Subscriptions in, index out). ``current`` keeps one index per store and
reloads it when the Subscription history moved: every create, update or delete, by this process
or another, adds a version there, so one indexed look-up per batch of events tells.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from ..errors import FHIRError
from ..search.query import SearchQuery
from ..store.watch import history_mark, read_all
from . import backport
from .acceptance import criteria_query, end_of, endpoint_of, owner_of
from .topics import is_topic_criteria

log = logging.getLogger("relais.subscriptions")


@dataclass(frozen=True)
class Active:
    """One Subscription due deliveries: what matching needs, without re-reading it."""

    id: str
    version: int
    criteria: str
    query: SearchQuery
    owner: str | None
    end: float | None  # epoch seconds
    endpoint: str = ""  # channel.endpoint: the lane its notifications go to


Index = dict[str, tuple[Active, ...]]  # resource type -> its active Subscriptions


@dataclass(frozen=True)
class TopicActive:
    """One active topic-based Subscription (backport): what matching and delivering need of it."""

    id: str
    version: int
    owner: str | None
    end: float | None
    endpoint: str
    settings: backport.TopicSubscription
    query: SearchQuery  # settings.query, read for every test: an attribute, not a property

    @property
    def criteria(self) -> str:
        return self.settings.topic.url


TopicIndex = dict[str, tuple[TopicActive, ...]]  # resource type -> its active topic-based Subscriptions


Entry = Active | TopicActive | None
Memo = dict[tuple[str, int], Entry]  # (id, version) -> what it was parsed into: a version never changes


def entry(resource: dict, version: int) -> Entry:
    """What one stored Subscription version is in an index: None when it is not active or cannot be parsed
    (logged: stored before a SearchParameter it names was removed, say; it can match nothing)."""
    if resource.get("status") != "active":
        return None
    if is_topic_criteria(resource.get("criteria")):
        try:
            settings = backport.read(resource)
        except backport.Invalid as exc:
            log.warning("Subscription/%s not indexed: %s", resource.get("id"), exc.message)
            return None
        return TopicActive(resource["id"], version, owner_of(resource), end_of(resource), endpoint_of(resource),
                           settings, settings.query)
    try:
        query = criteria_query(resource.get("criteria"))
    except FHIRError as exc:
        log.warning("Subscription/%s not indexed: %s", resource.get("id"), exc.diagnostics)
        return None
    return Active(resource["id"], version, resource["criteria"], query, owner_of(resource), end_of(resource),
                  endpoint_of(resource))


def _entries(subscriptions: list[tuple[dict, int]], memo: Memo | None) -> list[Entry]:
    found = []
    for resource, version in subscriptions:
        key = (resource.get("id", ""), version)
        if memo is not None and key in memo:
            found.append(memo[key])
            continue
        parsed = entry(resource, version)
        if memo is not None:
            memo[key] = parsed
        found.append(parsed)
    return found


def _by_type(entries: list, kind: type) -> dict:
    by_type: dict[str, list] = {}
    for item in entries:
        if isinstance(item, kind):
            by_type.setdefault(item.query.resource_type, []).append(item)
    return {rtype: tuple(items) for rtype, items in by_type.items()}


def build_topics(subscriptions: list[tuple[dict, int]], memo: Memo | None = None) -> TopicIndex:
    """The index of the active topic-based Subscriptions among ``(resource, version)`` pairs."""
    return _by_type(_entries(subscriptions, memo), TopicActive)


def build(subscriptions: list[tuple[dict, int]], memo: Memo | None = None) -> Index:
    """The index of ``(resource, version)`` pairs: status active only; unparseable criteria skipped (logged).

    ``memo`` keeps what each version was parsed into, from one build to the next: with a thousand
    Subscriptions, parsing them all again at each change took most of a second.
    """
    return _by_type(_entries(subscriptions, memo), Active)


def candidates(index: Index | TopicIndex, resource_type: str, now: float) -> tuple:
    """The Subscriptions of ``resource_type`` whose ``end`` has not passed at ``now``."""
    return tuple(s for s in index.get(resource_type, ()) if s.end is None or s.end > now)


# --- per store, in this process -------------------------------------------------------------------

@dataclass(frozen=True)
class Loaded:
    """Every index of one load of the stored Subscriptions, and the Subscriptions themselves."""

    classic: Index
    topics: TopicIndex
    subscriptions: tuple[tuple[dict, int], ...]


_cache: weakref.WeakKeyDictionary[Any, tuple[tuple, Loaded]] = weakref.WeakKeyDictionary()
_memos: weakref.WeakKeyDictionary[Any, Memo] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def loaded(store: Any) -> Loaded:
    """``store``'s Subscriptions and their indexes, reloaded if any Subscription changed since."""
    now_mark = history_mark(store, "Subscription")
    with _lock:
        cached = _cache.get(store)
    if cached is not None and cached[0] == now_mark:
        return cached[1]
    versions, mark = read_all(store, "Subscription")
    pairs = tuple((v.resource, v.version) for v in versions if v.resource)
    with _lock:
        previous = _memos.get(store, {})
    memo: Memo = {key: previous[key] for key in ((r.get("id", ""), v) for r, v in pairs) if key in previous}
    result = Loaded(build(list(pairs), memo), build_topics(list(pairs), memo), pairs)
    with _lock:
        _memos[store] = memo
        if mark is not None:
            _cache[store] = (mark, result)
        else:
            _cache.pop(store, None)
    return result


def current(store: Any) -> Index:
    """The index of ``store``'s active (criteria-based) Subscriptions, reloaded if any Subscription changed."""
    return loaded(store).classic


def current_topics(store: Any) -> TopicIndex:
    """The index of ``store``'s active topic-based Subscriptions, reloaded if any Subscription changed."""
    return loaded(store).topics
