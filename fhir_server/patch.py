"""The three patch formats FHIR clients send: JSON Patch, JSON Merge Patch and FHIRPath Patch.

Each ``apply`` takes the stored resource and the patch document and returns a new resource (the
stored one is never changed); a malformed document raises FHIRError 400, a well-formed one that
cannot be applied to this resource 422. The write path validates the result afterwards.

- JSON Patch (RFC 6902, ``application/json-patch+json``): the ``jsonpatch`` library.
- JSON Merge Patch (RFC 7396, ``application/merge-patch+json``; fhirpy's ``patch()`` sends one as
  ``application/json``): the ``json-merge-patch`` library.
- FHIRPath Patch (a Parameters resource, R4 fhirpatch.html, as HAPI FHIR and Microsoft's server
  accept it): paths are evaluated by fhirpathpy, which tells where each result sits in the resource.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import json_merge_patch
import jsonpatch
import jsonpointer

from .errors import FHIRError

JSON_PATCH, MERGE_PATCH, FHIRPATH_PATCH = "json-patch", "merge-patch", "fhirpath-patch"
FORMATS = (JSON_PATCH, MERGE_PATCH, FHIRPATH_PATCH)
MEDIA_TYPES = {"application/json-patch+json": JSON_PATCH, "application/merge-patch+json": MERGE_PATCH}


def format_of(media_type: str | None, document: object) -> str:
    """The format of a patch ``document`` sent as ``media_type``: the media type names it when it can,
    else the document's shape does (an array: JSON Patch; a Parameters resource: FHIRPath Patch;
    another object: a merge patch, as fhirpy sends it with ``application/json``)."""
    named = MEDIA_TYPES.get((media_type or "").split(";")[0].strip().lower())
    if named is not None:
        return named
    if isinstance(document, list):
        return JSON_PATCH
    if isinstance(document, dict) and document.get("resourceType") == "Parameters":
        return FHIRPATH_PATCH
    if isinstance(document, dict):
        return MERGE_PATCH
    raise FHIRError(400, "A patch is a JSON Patch array, a merge patch object or a FHIRPath Patch Parameters",
                    code="structure")


def apply(resource: dict, document: object, fmt: str) -> dict:
    """``resource`` patched by ``document`` in format ``fmt`` (one of FORMATS); ``resource`` is left as it is."""
    try:
        if fmt == JSON_PATCH:
            return _json_patch(resource, document)
        if fmt == MERGE_PATCH:
            return _merge_patch(resource, document)
        if fmt == FHIRPATH_PATCH:
            return _fhirpath_patch(resource, document)
    except RecursionError:
        raise FHIRError(400, "The patch document is nested too deeply", code="structure") from None
    raise FHIRError(415, f"Unknown patch format {fmt!r}", code="not-supported")


# ---- JSON Patch -------------------------------------------------------------------------------


def _json_patch(resource: dict, document: object) -> Any:
    if not isinstance(document, list):
        raise FHIRError(400, "A JSON Patch document is a JSON array of operations", code="structure")
    try:
        return jsonpatch.apply_patch(copy.deepcopy(resource), document)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise FHIRError(422, f"The patch cannot be applied: {exc}", code="processing") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise FHIRError(400, f"Invalid JSON Patch document: {exc}", code="structure") from None


# ---- JSON Merge Patch -------------------------------------------------------------------------


def _merge_patch(resource: dict, document: object) -> Any:
    # RFC 7396 allows any JSON value, which replaces the target whole: a resource is patched by an object.
    if not isinstance(document, dict):
        raise FHIRError(400, "A merge patch of a resource is a JSON object", code="structure")
    # merge() changes its first argument in place; the patch's own values are copied so that no
    # part of the request body ends up shared with the stored resource.
    return json_merge_patch.merge(copy.deepcopy(resource), copy.deepcopy(document))


# ---- FHIRPath Patch ---------------------------------------------------------------------------

_OPERATION_PARTS = {
    "add": ("path", "name", "value"),
    "insert": ("path", "index", "value"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
_STEP = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\[(\d+)\])?$")
_LAST_NAME = re.compile(r"^(.+)\.([A-Za-z][A-Za-z0-9]*)$")

Step = str | int


def _fhirpath_patch(resource: dict, document: object) -> dict:
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        raise FHIRError(400, "A FHIRPath Patch is a Parameters resource", code="structure")
    parameters = document.get("parameter")
    if not isinstance(parameters, list) or not parameters:
        raise FHIRError(400, "A FHIRPath Patch has one or more 'operation' parameters", code="required",
                        expression=["Parameters.parameter"])
    result = copy.deepcopy(resource)
    for number, parameter in enumerate(parameters):
        where = f"Parameters.parameter[{number}]"
        operation = _operation(parameter, where)
        _apply_operation(result, operation, where)
    return result


def _operation(parameter: object, where: str) -> dict[str, Any]:
    """The parts of one ``operation`` parameter by name, checked against its type."""
    if not isinstance(parameter, dict) or parameter.get("name") != "operation":
        raise FHIRError(400, f"{where}: a FHIRPath Patch parameter is named 'operation'", code="structure",
                        expression=[where])
    parts: dict[str, Any] = {}
    for part in parameter.get("part") or ():
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str) or name in parts:
            raise FHIRError(400, f"{where}: each part has a name, once", code="structure", expression=[where])
        parts[name] = _part_value(part, f"{where}.part({name})") if name == "value" else _primitive(part)
    kind = parts.get("type")
    if kind not in _OPERATION_PARTS:
        raise FHIRError(400, f"{where}: type is one of {', '.join(_OPERATION_PARTS)}", code="structure",
                        expression=[where])
    wanted = {"type", *_OPERATION_PARTS[kind]}
    missing = sorted(wanted - parts.keys())
    extra = sorted(parts.keys() - wanted)
    if missing or extra:
        told = "; ".join(filter(None, (missing and f"missing {', '.join(missing)}",
                                       extra and f"not expected: {', '.join(extra)}")))
        raise FHIRError(400, f"{where}: a {kind} operation: {told}", code="structure", expression=[where])
    for name in ("path", "name"):
        if name in parts and not (isinstance(parts[name], str) and parts[name]):
            raise FHIRError(400, f"{where}: {name} is a string", code="structure", expression=[where])
    for name in ("index", "source", "destination"):
        if name in parts and not (isinstance(parts[name], int) and not isinstance(parts[name], bool)
                                  and parts[name] >= 0):
            raise FHIRError(400, f"{where}: {name} is a non-negative integer", code="structure", expression=[where])
    return parts


def _primitive(part: dict) -> Any:
    """The value[x] of a part (type, path, name, index...), None when it has none."""
    values = [v for k, v in part.items() if k.startswith("value")]
    return values[0] if len(values) == 1 else None


def _part_value(part: dict, where: str) -> tuple[str | None, Any]:
    """(type suffix of value[x] or None, the JSON value) of a ``value`` part: a value[x], or, for an
    element that is no data type (a backbone element), parts named by its children."""
    typed = [(k[len("value"):], v) for k, v in part.items() if k.startswith("value") and len(k) > len("value")]
    if len(typed) == 1 and "part" not in part:
        return typed[0]
    if not typed and isinstance(part.get("part"), list):
        element: dict[str, Any] = {}
        for child in part["part"]:
            name = child.get("name") if isinstance(child, dict) else None
            if not isinstance(name, str):
                raise FHIRError(400, f"{where}: each part has a name", code="structure", expression=[where])
            _suffix, value = _part_value(child, f"{where}.part({name})")
            if name in element:
                earlier = element[name]
                element[name] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
            else:
                element[name] = value
        return None, element
    raise FHIRError(400, f"{where}: a value is one value[x] or parts", code="structure", expression=[where])


def _apply_operation(resource: dict, op: dict[str, Any], where: str) -> None:
    kind, path = op["type"], op["path"]
    if kind == "delete":
        targets = _locate(resource, path, where)
        if len(targets) > 1:
            raise _unapplicable(where, f"{path} matches {len(targets)} elements; delete removes one")
        if targets and not targets[0]:
            raise _unapplicable(where, "delete cannot delete the resource itself")
        if targets:
            _remove(resource, targets[0])
        return
    if kind == "replace":
        location = _one(resource, path, where)
        if not location:
            raise _unapplicable(where, "replace cannot replace the resource itself")
        suffix, value = op["value"]
        container, key = _container(resource, location)
        if isinstance(key, str) and suffix is not None and key != location[-1]:
            # a choice element (value[x]) takes the type of its new value: valueQuantity -> valueString
            del container[key]
            key = f"{location[-1]}{suffix}"
        container[key] = value
        return
    if kind == "add":
        parent = _resolve(resource, _one(resource, path, where))
        if not isinstance(parent, dict):
            raise _unapplicable(where, f"{path} is not an element that has children")
        suffix, value = op["value"]
        name = _element_name(parent, op["name"], suffix, resource, path)
        current = parent.get(name)
        if isinstance(current, list):
            current.append(value)
        elif current is not None:
            raise _unapplicable(where, f"{path}.{name} already has a value: replace it")
        else:
            parent[name] = [value] if _repeats(resource, path, name) else value
        return
    # insert and move work on a list
    items = _list_at(resource, path, where)
    if kind == "insert":
        if op["index"] > len(items):
            raise _unapplicable(where, f"index {op['index']} is past the end of {path} ({len(items)} elements)")
        items.insert(op["index"], op["value"][1])
        return
    source, destination = op["source"], op["destination"]
    if source >= len(items) or destination >= len(items):
        raise _unapplicable(where, f"{path} has {len(items)} elements: cannot move {source} to {destination}")
    items.insert(destination, items.pop(source))


def _unapplicable(where: str, text: str) -> FHIRError:
    return FHIRError(422, f"{where}: {text}", code="processing", expression=[where])


def _nodes(resource: dict, path: str) -> list:
    """What ``path`` selects, as fhirpathpy's nodes: each knows where it sits (``Patient.name[0].given[1]``)."""
    import fhirpathpy  # noqa: PLC0415 - its parser is slow to import; most processes never patch this way

    return fhirpathpy.evaluate(resource, path, model=_r4(), options={"returnRawData": True})


def _evaluate(resource: dict, path: str, where: str) -> list:
    try:
        return _nodes(resource, path)
    except Exception as exc:  # noqa: BLE001 - the parser and the engine raise many kinds
        raise FHIRError(400, f"{where}: the path {path!r} is not FHIRPath fhirpathpy can evaluate"
                             f" ({type(exc).__name__})", code="invalid", expression=[where]) from None


def _locate(resource: dict, path: str, where: str) -> list[list[Step]]:
    """Where each element ``path`` selects sits in ``resource``: a list of steps (keys and indexes)."""
    found = []
    for node in _evaluate(resource, path, where):
        prop = getattr(node, "propName", False)
        if prop is False:
            raise FHIRError(400, f"{where}: {path!r} selects values, not elements of the resource", code="invalid",
                            expression=[where])
        found.append(_steps(prop, where))
    return found


def _one(resource: dict, path: str, where: str) -> list[Step]:
    targets = _locate(resource, path, where)
    if len(targets) != 1:
        raise _unapplicable(where, f"{path} matches {len(targets)} elements, not one")
    return targets[0]


def _steps(prop: str | None, where: str) -> list[Step]:
    """fhirpathpy's location of a node (``Patient.name[0].given[1]``) as steps: ["name", 0, "given", 1]."""
    if prop is None:
        return []  # the resource itself
    steps: list[Step] = []
    for segment in prop.split(".")[1:]:
        match = _STEP.match(segment)
        if match is None:
            raise FHIRError(400, f"{where}: cannot locate {prop!r} in the resource", code="invalid",
                            expression=[where])
        steps.append(match.group(1))
        if match.group(2) is not None:
            steps.append(int(match.group(2)))
    return steps


def _key(container: dict, name: str) -> str:
    """The JSON key of element ``name``: itself, or its typed form when it is a choice (value -> valueQuantity)."""
    if name in container:
        return name
    for key in container:
        if key.startswith(name) and key[len(name): len(name) + 1].isupper():
            return key
    return name


def _container(resource: dict, location: list[Step]) -> tuple[Any, Step]:
    node: Any = resource
    for step in location[:-1]:
        node = node[_key(node, step) if isinstance(step, str) else step]
    last = location[-1]
    return node, (_key(node, last) if isinstance(last, str) else last)


def _resolve(resource: dict, location: list[Step]) -> Any:
    if not location:
        return resource
    container, key = _container(resource, location)
    return container[key]


def _remove(resource: dict, location: list[Step]) -> None:
    """Remove the element at ``location``, then the lists and objects that removing it left empty
    (FHIR JSON has no empty arrays or objects)."""
    while location:
        container, key = _container(resource, location)
        del container[key]
        if isinstance(key, str):
            container.pop(f"_{key}", None)  # the primitive's id and extensions go with it
        if container:
            return
        location = location[:-1]


def _list_at(resource: dict, path: str, where: str) -> list:
    """The list ``path`` names (insert, move): found through its elements, or, when it has none yet,
    as the named child of the one element the path's head selects."""
    targets = _locate(resource, path, where)
    if targets:
        heads = {tuple(t[:-1]) for t in targets}
        if len(heads) != 1 or not all(isinstance(t[-1], int) for t in targets):
            raise _unapplicable(where, f"{path} is not one list")
        container, key = _container(resource, list(next(iter(heads))))
        return container[key]
    match = _LAST_NAME.match(path)
    if match is None:
        raise _unapplicable(where, f"{path} is not a list of the resource")
    parent = _resolve(resource, _one(resource, match.group(1), where))
    if not isinstance(parent, dict):
        raise _unapplicable(where, f"{match.group(1)} is not an element that has children")
    items: list = []
    parent[match.group(2)] = items  # left empty only if the operation then fails (nothing is stored)
    return items


def _element_name(parent: dict, name: str, suffix: str | None, resource: dict, path: str) -> str:
    """The JSON key an added element takes: a choice element (value[x]) is named with its value's type."""
    model = _model_of(resource, path)
    if model is not None and suffix and _field(model, name) is None and _field(model, name + suffix) is not None:
        return name + suffix
    return name


def _repeats(resource: dict, path: str, name: str) -> bool:
    """Whether element ``name`` of what ``path`` selects is a list, from the R4 definitions."""
    model = _model_of(resource, path)
    field = _field(model, name) if model is not None else None
    return field is not None and "List[" in str(field.annotation)


# ---- types of elements (fhir.resources R4B models, the ones validation uses) --------------------


def _model_of(resource: dict, path: str) -> Any:
    """The model class of the element ``path`` selects, following the element names of its location."""
    location = _steps_of_path(resource, path)
    if location is None:
        return None
    model = _model_class(resource.get("resourceType", ""))
    node: Any = resource
    for step in location:
        if isinstance(step, int):
            node = node[step]
            continue
        key = _key(node, step)
        node = node[key]
        if isinstance(node, dict) and isinstance(node.get("resourceType"), str):
            model = _model_class(node["resourceType"])
            continue
        field = _field(model, key) if model is not None else None
        if field is None:
            return None
        model = _model_class(_type_name(str(field.annotation)))
    return model


def _steps_of_path(resource: dict, path: str) -> list[Step] | None:
    try:
        nodes = _nodes(resource, path)
        return _steps(nodes[0].propName, "") if len(nodes) == 1 else None
    except Exception:  # noqa: BLE001 - the caller reported bad paths already
        return None


_TYPE_NAME = re.compile(r"\b([A-Z][A-Za-z0-9]*)Type\b")


def _type_name(annotation: str) -> str:
    """``typing.Optional[typing.List[abc.HumanNameType]]`` -> ``HumanName``."""
    match = _TYPE_NAME.search(annotation)
    return match.group(1) if match else ""


@cache
def _model_class(name: str) -> Any:
    if not name:
        return None
    try:
        from fhir.resources.R4B import get_fhir_model_class  # noqa: PLC0415 - heavy, loaded once

        return get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def _field(model: Any, key: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


@cache
def _r4() -> dict:
    from fhirpathpy.models import models  # noqa: PLC0415 - several MB of JSON, loaded on first use

    return models["r4"]
