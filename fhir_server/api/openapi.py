"""GET /fhir/openapi.json: an OpenAPI 3 description generated from the CapabilityStatement.

Nothing here is written by hand per type: each declared interaction of each type becomes an
operation on its path, each declared search parameter a query parameter of its search, each declared
operation a path at its level. What the CapabilityStatement does not claim, the description does not
either.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .capability import current_statement

openapi = Blueprint("fhir_openapi", __name__)

OPENAPI_VERSION = "3.0.3"
_FHIR = "application/fhir+json"

# How an operation is called, by its definition: (HTTP method, level) pairs; level is system, type or
# instance. An operation not listed is described as POSTed at the level the CapabilityStatement puts it.
OPERATION_CALLS: dict[str, tuple[tuple[str, str], ...]] = {
    "http://hl7.org/fhir/OperationDefinition/Resource-validate": (("post", "type"), ("post", "instance")),
    "http://hl7.org/fhir/OperationDefinition/Patient-everything": (("get", "instance"),),
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export": (("get", "system"),),
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export": (("get", "type"),),
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export": (("get", "instance"),),
    "http://relais.example/OperationDefinition/Task-worklist": (("get", "type"),),
}

# Search result parameters every search takes (R4 search.html, "Modifying search results").
_RESULT_PARAMS = ("_count", "_offset", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude")


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _answer(description: str, schema: str = "Resource") -> dict:
    return {"description": description, "content": {_FHIR: {"schema": _ref("schemas", schema)}}}


def _responses(ok: str, description: str, schema: str = "Resource") -> dict:
    return {ok: _answer(description, schema), "default": _answer("An error, as an OperationOutcome",
                                                                 "OperationOutcome")}


def _body(schema: str = "Resource") -> dict:
    return {"required": True, "content": {_FHIR: {"schema": _ref("schemas", schema)}}}


# The schema of each patch format the CapabilityStatement may declare in patchFormat; one it does not
# declare is left out of the PATCH operations' requestBody.
_PATCH_SCHEMAS: dict[str, dict] = {
    "application/json-patch+json": {"type": "array", "items": {"type": "object"},
                                    "description": "JSON Patch (RFC 6902)"},
    "application/merge-patch+json": {"type": "object", "description": "JSON Merge Patch (RFC 7396)"},
    _FHIR: {"allOf": [_ref("schemas", "Resource")], "description": "FHIRPath Patch: a Parameters resource"},
}


def _patch_body(patch_formats: list[str]) -> dict:
    return {"required": True, "content": {media: {"schema": _PATCH_SCHEMAS[media]}
                                          for media in patch_formats if media in _PATCH_SCHEMAS}}


def _search_parameters(declared: list[dict]) -> list[dict]:
    params = [{"name": p["name"], "in": "query", "required": False, "schema": {"type": "string"},
               "description": f"{p['type']} search parameter ({p['definition']})"} for p in declared]
    return params + [_ref("parameters", name) for name in _RESULT_PARAMS]


def _type_paths(resource: dict, patch_formats: list[str]) -> dict[str, dict]:
    rtype = resource["type"]
    codes = {i["code"] for i in resource.get("interaction", [])}
    tag = [rtype]
    paths: dict[str, dict] = {}

    def put(path: str, method: str, op_id: str, summary: str, **extra: object) -> None:
        paths.setdefault(path, {})[method] = {"tags": tag, "operationId": op_id, "summary": summary, **extra}

    instance = [_ref("parameters", "id")]
    if "search-type" in codes:
        params = _search_parameters(resource.get("searchParam", []))
        put(f"/{rtype}", "get", f"search-{rtype}", f"Search {rtype}", parameters=params,
            responses=_responses("200", "A searchset Bundle", "Bundle"))
        put(f"/{rtype}/_search", "post", f"search-post-{rtype}", f"Search {rtype} (form body)",
            requestBody={"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
            responses=_responses("200", "A searchset Bundle", "Bundle"))
    if "create" in codes:
        put(f"/{rtype}", "post", f"create-{rtype}", f"Create a {rtype}", requestBody=_body(),
            responses=_responses("201", f"The created {rtype}"))
    if "read" in codes:
        put(f"/{rtype}/{{id}}", "get", f"read-{rtype}", f"Read a {rtype}", parameters=instance,
            responses=_responses("200", f"The current {rtype}"))
    if "update" in codes:
        put(f"/{rtype}/{{id}}", "put", f"update-{rtype}", f"Update (or create) a {rtype}", parameters=instance,
            requestBody=_body(), responses=_responses("200", f"The updated {rtype}"))
    if "patch" in codes:
        put(f"/{rtype}/{{id}}", "patch", f"patch-{rtype}", f"Patch a {rtype}", parameters=instance,
            requestBody=_patch_body(patch_formats),
            responses=_responses("200", f"The patched {rtype}"))
    if "delete" in codes:
        put(f"/{rtype}/{{id}}", "delete", f"delete-{rtype}", f"Delete a {rtype}", parameters=instance,
            responses={"204": {"description": "Deleted"}, "default": _answer("An error", "OperationOutcome")})
    if "vread" in codes:
        put(f"/{rtype}/{{id}}/_history/{{vid}}", "get", f"vread-{rtype}", f"Read a version of a {rtype}",
            parameters=[*instance, _ref("parameters", "vid")], responses=_responses("200", f"That {rtype} version"))
    if "history-instance" in codes:
        put(f"/{rtype}/{{id}}/_history", "get", f"history-instance-{rtype}", f"History of a {rtype}",
            parameters=instance, responses=_responses("200", "A history Bundle", "Bundle"))
    if "history-type" in codes:
        put(f"/{rtype}/_history", "get", f"history-type-{rtype}", f"History of every {rtype}",
            responses=_responses("200", "A history Bundle", "Bundle"))
    for op in resource.get("operation", []):
        _operation(paths, op, rtype, tag)
    return paths


def _operation(paths: dict[str, dict], op: dict, rtype: str | None, tag: list[str]) -> None:
    default_level = "type" if rtype else "system"
    calls = OPERATION_CALLS.get(op.get("definition", ""), (("post", default_level),))
    for method, level in calls:
        if (level == "system") != (rtype is None):
            continue
        path = {"system": "", "type": f"/{rtype}", "instance": f"/{rtype}/{{id}}"}[level] + f"/${op['name']}"
        entry: dict = {"tags": tag, "operationId": f"{op['name']}-{level}-{rtype or 'system'}-{method}",
                       "summary": f"${op['name']} ({op.get('definition', '')})",
                       "responses": _responses("200", "The outcome of the operation")}
        if level == "instance":
            entry["parameters"] = [_ref("parameters", "id")]
        if method == "post":
            entry["requestBody"] = {"required": False, "content": {_FHIR: {"schema": _ref("schemas", "Resource")}}}
        paths.setdefault(path, {})[method] = entry


def _system_paths(rest: dict) -> dict[str, dict]:
    codes = {i["code"] for i in rest.get("interaction", [])}
    tag = ["system"]
    paths: dict[str, dict] = {"/metadata": {"get": {
        "tags": tag, "operationId": "capabilities", "summary": "The CapabilityStatement", "security": [],
        "responses": _responses("200", "The CapabilityStatement")}}}
    if "search-system" in codes:
        params = [{"name": "_type", "in": "query", "required": True, "schema": {"type": "string"},
                   "description": "The types to search, comma-separated"},
                  *_search_parameters(rest.get("searchParam", []))]
        paths.setdefault("/", {})["get"] = {"tags": tag, "operationId": "search-system",
                                            "summary": "Search several types", "parameters": params,
                                            "responses": _responses("200", "A searchset Bundle", "Bundle")}
    if codes & {"batch", "transaction"}:
        kinds = " or ".join(sorted(codes & {"batch", "transaction"}))
        paths.setdefault("/", {})["post"] = {"tags": tag, "operationId": "batch-transaction",
                                             "summary": f"A {kinds} Bundle", "requestBody": _body("Bundle"),
                                             "responses": _responses("200", "The response Bundle", "Bundle")}
    if "history-system" in codes:
        paths["/_history"] = {"get": {"tags": tag, "operationId": "history-system", "summary": "History of all",
                                      "responses": _responses("200", "A history Bundle", "Bundle")}}
    compartments = rest.get("compartment", [])
    if compartments:
        members = sorted(r["type"] for r in rest.get("resource", []) if r["type"] != "Patient")
        paths["/Patient/{id}/{type}"] = {"get": {
            "tags": ["Patient"], "operationId": "search-patient-compartment",
            "summary": "Search one type in a patient's compartment",
            "parameters": [_ref("parameters", "id"),
                           {"name": "type", "in": "path", "required": True, "schema": {"type": "string",
                                                                                       "enum": members}},
                           *(_ref("parameters", name) for name in _RESULT_PARAMS)],
            "responses": _responses("200", "A searchset Bundle", "Bundle")}}
    for op in rest.get("operation", []):
        _operation(paths, op, None, tag)
    return paths


def _components(rest: dict) -> dict:
    def query(name: str, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                "description": description}

    resource = {"type": "object", "required": ["resourceType"], "additionalProperties": True,
                "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}}}
    components: dict = {
        "schemas": {
            "Resource": resource,
            "Bundle": {"allOf": [_ref("schemas", "Resource"), {"type": "object", "properties": {
                "type": {"type": "string"}, "total": {"type": "integer"},
                "entry": {"type": "array", "items": {"type": "object"}}}}]},
            "OperationOutcome": {"allOf": [_ref("schemas", "Resource"), {"type": "object", "properties": {
                "issue": {"type": "array", "items": {"type": "object"}}}}]},
        },
        "parameters": {
            "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string",
                                                                            "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}},
            "vid": {"name": "vid", "in": "path", "required": True, "schema": {"type": "string"}},
            "_count": query("_count", "Page size"),
            "_offset": query("_offset", "Matches to skip"),
            "_sort": query("_sort", "Sort keys, comma-separated, - for descending"),
            "_total": query("_total", "accurate, estimate or none"),
            "_summary": query("_summary", "true, text, data, count or false"),
            "_elements": query("_elements", "Elements to return, comma-separated"),
            "_include": query("_include", "Type:parameter[:Target], or *"),
            "_revinclude": query("_revinclude", "Type:parameter[:Target]"),
        },
    }
    security = rest.get("security") or {}
    uris = {e.get("url"): e.get("valueUri") for x in security.get("extension", []) for e in x.get("extension", [])}
    if uris.get("token"):
        components["securitySchemes"] = {"smart": {"type": "oauth2", "flows": {"clientCredentials": {
            "tokenUrl": uris["token"], "scopes": {}}}}}
    return components


def openapi_document(statement: dict) -> dict:
    """The OpenAPI 3 document of ``statement`` (a CapabilityStatement with one server rest entry)."""
    rest = statement["rest"][0]
    paths = _system_paths(rest)
    for resource in rest.get("resource", []):
        for path, methods in _type_paths(resource, statement.get("patchFormat", [])).items():
            paths.setdefault(path, {}).update(methods)
    components = _components(rest)
    document: dict = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": f"{statement['software']['name']} FHIR {statement['fhirVersion']} API",
                 "version": statement["software"]["version"],
                 "description": "Generated from this server's CapabilityStatement (GET /metadata)."},
        "servers": [{"url": statement["implementation"]["url"]}],
        "paths": paths,
        "components": components,
        "tags": [{"name": "system"}, *({"name": r["type"]} for r in rest.get("resource", []))],
    }
    if "securitySchemes" in components:
        document["security"] = [{"smart": []}]
    return document


@openapi.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi_document(current_statement()))
