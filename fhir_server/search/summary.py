"""``_summary`` and ``_elements``: subsets of a resource, marked SUBSETTED as R4 requires.

Which elements are "summary" or mandatory comes from the fhir.resources R4B models (the same
definitions validation uses); subsetting applies to top-level elements.
"""

from __future__ import annotations

import copy
from functools import cache

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def _element_flags(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, as JSON names; empty for unknown types."""
    try:
        from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415 - heavy import, rarely needed

        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return frozenset(), frozenset()
    summary, mandatory = set(), set()
    for name, f in model.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        key = f.alias or name
        if extra.get("summary_element_property"):
            summary.add(key)
        if f.is_required() or extra.get("element_required"):
            mandatory.add(key)
    return frozenset(summary), frozenset(mandatory)


def _mark(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or () if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    resource["meta"] = meta
    return resource


def summarize(resource: dict, mode: str | None) -> dict:
    """The resource as ``_summary=mode`` asks (true | text | data | false/None = whole)."""
    if mode in (None, "false", "count"):
        return resource
    rtype = resource.get("resourceType", "")
    summary, mandatory = _element_flags(rtype)
    if mode == "true":
        keep = set(summary) | set(_ALWAYS)
        out = {k: v for k, v in resource.items() if k in keep}
    elif mode == "text":
        keep = {"text", *mandatory, *_ALWAYS}
        out = {k: v for k, v in resource.items() if k in keep}
    elif mode == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    else:
        return resource
    return _mark(copy.deepcopy(out))


def select_elements(resource: dict, elements: tuple[str, ...]) -> dict:
    """Only the named top-level elements (plus id, meta and the mandatory ones)."""
    if not elements:
        return resource
    _summary, mandatory = _element_flags(resource.get("resourceType", ""))
    wanted = {e.split(".")[0] for e in elements}
    keep = wanted | set(mandatory) | set(_ALWAYS)
    # Choice elements are asked by their base name (value) but stored typed (valueQuantity).
    out = {
        k: v
        for k, v in resource.items()
        if k in keep or any(k.startswith(w) and k[len(w) : len(w) + 1].isupper() for w in wanted)
    }
    return _mark(copy.deepcopy(out))
