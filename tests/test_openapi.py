"""The OpenAPI document as client generators read it (`todo-api openapi`); CI also generates a
TypeScript client from it and lints it with Redocly and Spectral (.ci/client-check.sh)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.errors import ErrorCode
from todo_api.http import conditional
from todo_api.http.conditional import ETag

APP = create_app(load_settings(_env_file=None, require_database=False, require_key_source=False))
DOCUMENT = APP.openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]
type Operation = tuple[str, str, dict[str, Any]]


def operations() -> Iterator[Operation]:
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def responses(*statuses: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for method, path, operation in operations():
        for status, response in operation["responses"].items():
            if not statuses or status in statuses:
                yield f"{method} {path}", status, response


def test_operation_ids_are_the_route_names() -> None:
    routes = {
        (method, route.path): route.name
        for route in APP.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    ids = [operation["operationId"] for *_, operation in operations()]
    assert len(set(ids)) == len(ids)
    assert {(method, path): operation["operationId"] for method, path, operation in operations()} == routes
    assert "create_todo" in ids


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "$ref" in value:
            yield value["$ref"].rsplit("/", 1)[-1]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _inline_enums(value: Any) -> Iterator[list[Any]]:
    if isinstance(value, dict):
        if "enum" in value and "x-enum-varnames" not in value:
            yield value["enum"]
        for item in value.values():
            yield from _inline_enums(item)
    elif isinstance(value, list):
        for item in value:
            yield from _inline_enums(item)


@pytest.mark.parametrize(
    ("name", "users"),
    [
        ("Priority", ["TodoCreate", "TodoUpdate", "TodoRead"]),
        ("TodoSort", []),
        ("ListSort", []),
        ("ErrorCode", ["ErrorBody", "ServerErrorBody", "HTTPValidationError"]),
    ],
)
def test_shared_enums_are_named_schemas_with_variable_names(name: str, users: list[str]) -> None:
    enum = SCHEMAS[name]
    assert len(enum["x-enum-varnames"]) == len(enum["enum"])
    assert all(varname.isidentifier() and varname.isupper() for varname in enum["x-enum-varnames"])
    for user in users:
        assert name in set(_refs(SCHEMAS[user]))
    assert name in set(_refs(DOCUMENT["paths"])) or users


def test_no_enum_is_inlined() -> None:
    """Every enum is a named schema; only `Idempotent-Replayed: true` is a one-value header enum."""
    assert list(_inline_enums(DOCUMENT["paths"])) == [["true"]] * len(list(responses("201")))
    assert list(_inline_enums(SCHEMAS)) == []


def test_the_sort_enums_name_descending_orders() -> None:
    varnames = dict(zip(SCHEMAS["TodoSort"]["enum"], SCHEMAS["TodoSort"]["x-enum-varnames"], strict=True))
    assert varnames["-created_at"] == "CREATED_AT_DESC"


def test_error_codes_are_the_enum_of_every_error_body() -> None:
    assert SCHEMAS["ErrorCode"]["enum"] == [code.value for code in ErrorCode]
    for label, status, response in responses():
        if int(status) >= 400:
            schema = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert "code" in SCHEMAS[schema]["required"], (label, status)


def _header(response: dict[str, Any], name: str) -> dict[str, Any]:
    header: dict[str, Any] = response["headers"][name]
    return DOCUMENT["components"]["headers"][name] if "$ref" in header else header


def test_every_operation_requires_the_bearer_scheme() -> None:
    """The "Authorize" button of /docs and generated clients' auth: declared on every operation
    (every route is behind the authentication middleware)."""
    assert DOCUMENT["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "A JWT from your identity provider."}
    }
    labels = [f"{method} {path}" for method, path, _ in operations()]
    assert len(labels) >= 24
    for method, path, operation in operations():
        assert operation["security"] == [{"HTTPBearer": []}], f"{method} {path}"


def test_every_response_declares_x_request_id() -> None:
    for label, status, response in responses():
        assert _header(response, "X-Request-ID")["required"] is True, (label, status)


@pytest.mark.parametrize(
    ("status", "header", "required"),
    [
        ("201", "Location", True),
        ("201", "ETag", True),
        ("201", "Idempotent-Replayed", False),
        ("304", "ETag", True),
        ("401", "WWW-Authenticate", True),
        ("429", "Retry-After", True),
        ("503", "Retry-After", True),
    ],
)
def test_headers_clients_rely_on_are_declared(status: str, header: str, required: bool) -> None:
    found = list(responses(status))
    assert found
    for label, _, response in found:
        assert _header(response, header)["required"] is required, label


def test_single_resource_reads_and_writes_declare_their_etag() -> None:
    for label, _, response in responses("200"):
        if label.endswith("_id}"):
            assert _header(response, "ETag")["required"] is True, label


def _dependency_calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield getattr(dependency.call, "__func__", dependency.call)  # a bound `ETag.if_match` as its function
        yield from _dependency_calls(dependency)


@pytest.mark.parametrize(
    ("reader", "header"), [(ETag.if_match, "If-Match"), (conditional.if_none_match, "If-None-Match")]
)
def test_the_conditional_headers_are_documented_where_they_are_read(reader: Any, header: str) -> None:
    """Read from the request by a dependency (not FastAPI `Header()` parameters, see
    `http.conditional.header_parameter`), so documented by the route's `openapi_extra`: an
    operation documents the header exactly when its dependencies read it."""
    reading = {
        (method, route.path)
        for route in APP.routes
        if isinstance(route, APIRoute) and reader in set(_dependency_calls(route.dependant))
        for method in route.methods
    }
    documenting = {
        (method, path)
        for method, path, operation in operations()
        if any(p["in"] == "header" and p["name"] == header for p in operation.get("parameters", ()))
    }
    assert reading, header
    assert reading == documenting


def test_the_in_flight_409_of_creates_declares_retry_after() -> None:
    creates = {
        f"{method} {path}"
        for method, path, operation in operations()
        if any(parameter["name"] == "Idempotency-Key" for parameter in operation.get("parameters", []))
    }
    assert creates == {"POST /api/todos", "POST /api/lists"}
    for label, _, response in responses("409"):
        if label in creates:
            assert _header(response, "Retry-After")["required"] is False
            assert "idempotency_in_flight" in response["description"]


def test_every_operation_with_a_body_documents_415() -> None:
    for method, path, operation in operations():
        assert ("415" in operation["responses"]) == ("requestBody" in operation), (method, path)


def test_parameters_are_described_and_optional_ones_are_not_nullable() -> None:
    for method, path, operation in operations():
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (method, path, parameter["name"])
            assert {"type": "null"} not in parameter["schema"].get("anyOf", []), (method, path, parameter["name"])


@pytest.mark.parametrize(
    "name",
    [
        "TodoCreate",
        "TodoUpdate",
        "TodoRead",
        "TodoPage",
        "ListCreate",
        "ListUpdate",
        "ListRead",
        "ListPage",
        "UserRead",
        "ErrorBody",
        "ServerErrorBody",
        "HTTPValidationError",
        "TrashItem",
        "TrashPage",
        "SyncResponse",
        "Deleted",
        "BatchRequest",
        "Command",
        "CommandResult",
        "CommandError",
        "BatchResponse",
        "TodoMove",
        "ListMove",
        "CompletionRead",
        "CompletionPage",
        "FiringRead",
        "FiringPage",
        "AtReminder",
        "BeforeDueReminder",
    ],
)
def test_schemas_have_examples(name: str) -> None:
    assert SCHEMAS[name]["examples"]


def test_info_and_servers_are_filled() -> None:
    info = DOCUMENT["info"]
    assert info["description"]
    assert info["version"]
    assert info["license"] == {"name": "MIT", "identifier": "MIT"}
    assert DOCUMENT["servers"]
    assert all(tag.get("description") for tag in DOCUMENT["tags"])
