"""The OpenAPI document: what FastAPI derives from the routes, finished for client generators.

FastAPI builds the document; `install` adds what no single route declares: the bearer scheme on
every `/api` operation (the authentication middleware applies it to all of them, so it is not a
per-request dependency), `X-Request-ID` on every response (the request middleware sets it on all of
them) and `code` on FastAPI's own 422 body, and
drops `null` from optional parameters' types (a query string or header cannot carry a null; the
parameter is left out instead), so clients type them `string`, not `string | null`.
Operation ids are the route names (`create_todo`), not FastAPI's `create_todo_api_todos_post`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase

from todo_api.http.responses import CODE_DESCRIPTION

REF = "#/components/schemas/"
REQUEST_ID = "X-Request-ID"
REQUEST_ID_HEADER = {
    "description": "This request's id: yours, echoed when it is 1–128 of `A–Z a–z 0–9 . _ : -`, else a new one. "
    "Server logs carry it.",
    "required": True,
    "schema": {"type": "string", "examples": ["4f1c2b7e9a0d4c3e8b6a5f4e3d2c1b0a"]},
}
VALIDATION_EXAMPLE = {
    "detail": [{"type": "missing", "loc": ["body", "title"], "msg": "Field required", "input": {}}],
    "code": "validation_failed",
}


def operation_id(route: APIRoute) -> str:
    """`generate_unique_id_function`: the route's name, unique across the app (a test checks)."""
    return route.name


def install(app: FastAPI, security: SecurityBase, prefix: str = "/api") -> None:
    """Make `app.openapi()` return the finished document (built once, like FastAPI's)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(generate(), security, prefix)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document


def finish(document: dict[str, Any], security: SecurityBase, prefix: str) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("headers", {})[REQUEST_ID] = REQUEST_ID_HEADER
    scheme = security.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    components.setdefault("securitySchemes", {})[security.scheme_name] = scheme
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if path == prefix or path.startswith(prefix + "/"):
                operation["security"] = [{security.scheme_name: []}]
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})[REQUEST_ID] = {"$ref": f"#/components/headers/{REQUEST_ID}"}
    schemas = components.get("schemas", {})
    if "HTTPValidationError" in schemas:  # FastAPI's shared definition: replaced, never changed in place
        schemas["HTTPValidationError"] = _validation_error(schemas["HTTPValidationError"])
    return document


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    branches = [branch for branch in schema.get("anyOf", ()) if branch != {"type": "null"}]
    if "anyOf" not in schema or len(branches) == len(schema["anyOf"]):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**branches[0], **rest} if len(branches) == 1 else {**rest, "anyOf": branches}


def _validation_error(definition: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's 422 body (`detail`: a list of errors) with the `code` every error body has."""
    properties = {**definition["properties"], "code": {"$ref": f"{REF}ErrorCode", "description": CODE_DESCRIPTION}}
    return {
        **definition,
        "description": "422: the request is well-formed but its content is not acceptable; `detail` lists why.",
        "properties": properties,
        "required": ["detail", "code"],
        "examples": [VALIDATION_EXAMPLE],
    }
