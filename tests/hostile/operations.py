"""The operations under attack, read from the app's own OpenAPI document (a new route is covered
without touching the suite), each with what a valid request to it looks like."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

type Schema = dict[str, Any]
type FieldPath = tuple[str | int, ...]

VALID_DATETIME = "2030-01-31T09:00:00Z"
# Headers every operation reads, documented or not (the documented ones come from the document).
APP_HEADERS = ("Authorization", "Content-Type", "Content-Length", "X-Request-ID")


def _resolve(schema: Schema, document: Mapping[str, Any]) -> Schema:
    """The schema a `$ref` names, with the reference's siblings (`default`, `description`) kept."""
    reference = schema.get("$ref")
    if reference is None:
        return schema
    name = str(reference).rsplit("/", 1)[-1]
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return {**_resolve(document["components"]["schemas"][name], document), **siblings}


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path | query | header
    schema: Schema
    required: bool = False

    @property
    def is_array(self) -> bool:
        return self.schema.get("type") == "array"

    @property
    def is_free_text(self) -> bool:
        """Any (NUL-free) text is a valid value: a search term or a tag, not an enum, id, number,
        date, cursor or sync token."""
        schema = self.schema.get("items", self.schema) if self.is_array else self.schema
        variants = [variant for variant in schema.get("anyOf", [schema]) if variant.get("type") != "null"]
        if len(variants) != 1:  # a uuid or `none`, …
            return False
        (schema,) = variants
        typed = "enum" in schema or "const" in schema or "format" in schema or schema.get("type") != "string"
        return not typed and self.name not in {"cursor", "sync_token"}


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    body: Schema | None  # the JSON body's schema, resolved

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def located(self, location: str) -> list[Parameter]:
        return [parameter for parameter in self.parameters if parameter.location == location]

    def reads_header(self, name: str) -> bool:
        return any(p.name.lower() == name.lower() for p in self.located("header"))

    @property
    def headers(self) -> list[str]:
        return [*APP_HEADERS, *(parameter.name for parameter in self.located("header"))]

    @property
    def collection(self) -> str:
        """`/api/todos` for `/api/todos/{todo_id}`: where the resource a path names is created."""
        return self.path.split("/{", 1)[0]


def operations(document: Mapping[str, Any]) -> list[Operation]:
    found = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            parameters = tuple(
                Parameter(p["name"], p["in"], _resolve(p["schema"], document), bool(p.get("required")))
                for p in spec.get("parameters", [])
            )
            content = spec.get("requestBody", {}).get("content", {}).get("application/json")
            body = _resolve(content["schema"], document) if content else None
            if body is not None:
                body = {**body, "properties": {k: _resolve(v, document) for k, v in body["properties"].items()}}
            found.append(Operation(method.upper(), path, parameters, body))
    return found


def valid_instance(schema: Schema, unique: str) -> Any:
    """A minimal valid value: required properties only; text is unique (list names must be)."""
    if "anyOf" in schema:
        return valid_instance(next(s for s in schema["anyOf"] if s.get("type") != "null"), unique)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: valid_instance(properties[name], unique) for name in schema.get("required", [])}
    if kind == "string":
        return {"uuid": str(uuid.uuid4()), "date-time": VALID_DATETIME}.get(schema.get("format", ""), unique)
    defaults: dict[str, Any] = {"boolean": False, "integer": 1, "number": 1.5, "array": []}
    return defaults[str(kind)]


def body_fields(schema: Schema, prefix: FieldPath = ()) -> list[FieldPath]:
    """Every field of a body, nested ones included (an array's items as index 0)."""
    fields: list[FieldPath] = []
    for name, field in schema.get("properties", {}).items():
        fields.append((*prefix, name))
        variants = field.get("anyOf", [field])
        for variant in variants:
            if variant.get("type") == "array":
                fields.append((*prefix, name, 0))
            if variant.get("type") == "object":
                fields.extend(body_fields(variant, (*prefix, name)))
    return fields


def with_value(body: Any, path: FieldPath, value: Any) -> Any:
    """`body` with `value` at `path` (an int step makes a one-item array)."""
    if not path:
        return value
    step, rest = path[0], path[1:]
    if isinstance(step, int):
        return [with_value(None, rest, value)]
    container = dict(body) if isinstance(body, dict) else {}
    container[step] = with_value(container.get(step), rest, value)
    return container
