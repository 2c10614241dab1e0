"""The complaint concepts triage rules name, and their mentions in a resource's free text.

The French matching itself (accents, plurals, misspellings, negation) is ``rules/french_text.py``; this
module only says which text of a resource is read: a Communication's ``payload.contentString``, a
QuestionnaireResponse's ``valueString`` answers, an Observation's ``valueString`` and notes.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from . import french_text


@lru_cache(maxsize=1)
def concepts() -> dict:
    """Concept id -> its French phrases (rules/complaint_concepts.yaml), read once."""
    return dict(french_text.load_concepts())


@lru_cache(maxsize=1)
def labels() -> dict:
    """Concept id -> its French label ("Douleur thoracique")."""
    return dict(french_text.load_concept_labels())


@lru_cache(maxsize=256)
def _chosen(wanted: tuple[str, ...]) -> dict:
    return {key: value for key, value in concepts().items() if key in wanted}


def texts(resource: dict) -> Iterator[str]:
    """The free text of ``resource`` a patient or carer wrote."""
    rtype = resource.get("resourceType")
    if rtype == "Communication":
        for payload in resource.get("payload") or ():
            if isinstance(payload.get("contentString"), str):
                yield payload["contentString"]
    elif rtype == "QuestionnaireResponse":
        yield from _answers(resource.get("item") or ())
    elif rtype == "Observation":
        if isinstance(resource.get("valueString"), str):
            yield resource["valueString"]
    for note in resource.get("note") or ():
        if isinstance(note.get("text"), str):
            yield note["text"]


def _answers(items: list) -> Iterator[str]:
    for item in items:
        for answer in item.get("answer") or ():
            if isinstance(answer.get("valueString"), str):
                yield answer["valueString"]
            yield from _answers(answer.get("item") or ())
        yield from _answers(item.get("item") or ())


def mentions(resource: dict, wanted: tuple[str, ...]) -> list:
    """The mentions (not denied) of the ``wanted`` concepts in the free text of ``resource``."""
    chosen = _chosen(wanted)
    found = []
    for text in texts(resource):
        found.extend(french_text.find_mentions(text, chosen))
    return found
