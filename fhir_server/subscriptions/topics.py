"""The server's subscription topics (Subscriptions R5 Backport IG, R4): what each one notifies, and the
filters a Subscription may narrow it with.

R4 has no SubscriptionTopic resource: the backport names a topic by its canonical URL in
``Subscription.criteria`` and the server advertises the URLs it knows in its CapabilityStatement.
A topic here is data: the resource type it watches, the interactions that trigger it, a base
search that every focus meets, and the search parameters its ``filterCriteria`` may use.
Pure functions: no store, no app.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..codes import TASK_CODE_SYSTEM, TRIAGE_ALERT
from ..search.errors import SearchError
from ..search.parser import parse_criteria
from ..search.query import SearchQuery

TOPIC_BASE = "https://relais.example/fhir/SubscriptionTopic"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"

CREATE, UPDATE, DELETE = "create", "update", "delete"
_INTERACTION = {"POST": CREATE, "PUT": UPDATE, "PATCH": UPDATE, "DELETE": DELETE}


@dataclass(frozen=True)
class Topic:
    """One topic: ``url`` its canonical, ``criteria`` the base search every focus meets (``Type`` or
    ``Type?name=value``), ``interactions`` those that trigger it, ``filters`` the search parameters a
    Subscription may filter it by."""

    url: str
    title: str
    criteria: str
    interactions: frozenset[str]
    filters: tuple[str, ...]

    @property
    def resource_type(self) -> str:
        return self.criteria.partition("?")[0]


TOPICS: dict[str, Topic] = {
    t.url: t
    for t in (
        Topic(f"{TOPIC_BASE}/triage-alert", "A triage alert is raised, updated or withdrawn",
              f"Task?code={TASK_CODE_SYSTEM}|{TRIAGE_ALERT['code']}", frozenset({CREATE, UPDATE, DELETE}),
              ("priority", "owner", "patient", "subject", "status", "business-status")),
        Topic(f"{TOPIC_BASE}/vital-signs-measure", "A new vital-signs measure for a patient",
              f"Observation?category={VITAL_SIGNS}", frozenset({CREATE}), ("patient", "subject", "code")),
        Topic(f"{TOPIC_BASE}/document", "A document is added, replaced or deleted",
              "DocumentReference", frozenset({CREATE, UPDATE, DELETE}), ("patient", "subject", "type")),
        Topic(f"{TOPIC_BASE}/patient", "A patient is created, updated or merged (Patient.link replaces)",
              "Patient", frozenset({CREATE, UPDATE}), ("_id", "identifier")),
    )
}


def interaction_of(method: str, version: int) -> str | None:
    """The topic interaction a stored version stands for (a PUT creating version 1 is a create)."""
    interaction = _INTERACTION.get(method)
    return CREATE if interaction == UPDATE and version == 1 else interaction


def topic_of(criteria: object) -> Topic | None:
    """The topic a ``Subscription.criteria`` names, None when it is not one of ours (an R4 search criteria)."""
    return TOPICS.get(criteria.strip()) if isinstance(criteria, str) else None


def is_topic_criteria(criteria: object) -> bool:
    """Whether ``criteria`` is a canonical URL (topic-based) rather than ``Type?name=value``."""
    return isinstance(criteria, str) and criteria.strip().startswith(("http://", "https://", "urn:"))


def filter_pairs(topic: Topic, filter_criteria: list[str]) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of ``filterCriteria`` strings (``Type?a=b&c=d`` or ``a=b``); ValueError
    naming one the topic does not take."""
    pairs: list[tuple[str, str]] = []
    for raw in filter_criteria:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("a filterCriteria is a non-empty string: Type?name=value or name=value")
        head, sep, tail = raw.strip().partition("?")
        if sep:
            if head.lstrip("/") != topic.resource_type:
                raise ValueError(f"filterCriteria {raw!r}: topic {topic.url} notifies {topic.resource_type}, "
                                 f"not {head}")
            raw = tail
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if name.partition(":")[0] not in topic.filters:
                raise ValueError(f"filterCriteria {raw!r}: topic {topic.url} is filtered by "
                                 f"{', '.join(topic.filters)} only, not {name!r}")
            pairs.append((name, value))
    return pairs


def topic_query(topic: Topic, filter_criteria: list[str]) -> SearchQuery:
    """The search a focus of ``topic`` must meet for a Subscription with ``filter_criteria`` (AND of all);
    ValueError naming a bad filter."""
    from urllib.parse import quote

    pairs = filter_pairs(topic, filter_criteria)
    extra = "&".join(f"{quote(name, safe=':_-.')}={quote(value, safe='/|:,._-')}" for name, value in pairs)
    criteria = topic.criteria + (("&" if "?" in topic.criteria else "?") + extra if extra else "")
    try:
        return parse_criteria(criteria, strict=True)
    except SearchError as exc:
        raise ValueError(f"filterCriteria: {exc.message}") from None
