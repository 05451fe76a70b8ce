"""Response documentation shared by resource routers, and the `Location` of created resources."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.applications import Starlette

from todo_api.http.conditional import Tagged, if_none_match_hits


class ErrorBody(BaseModel):
    detail: str


class UnavailableBody(ErrorBody):
    request_id: str | None = None


type Responses = dict[int | str, dict[str, Any]]

COMMON: Responses = {
    401: {"model": ErrorBody, "description": "Missing or invalid token (`WWW-Authenticate: Bearer`)."},
    403: {"model": ErrorBody, "description": "The token lacks the scope this method needs."},
    413: {"model": ErrorBody, "description": "The request body is larger than MAX_BODY_BYTES."},
    429: {"model": ErrorBody, "description": "Per-user rate limit reached; retry after `Retry-After` seconds."},
    503: {"model": UnavailableBody, "description": "A dependency is down; retry after `Retry-After` seconds."},
}
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "No such resource for this user."}}
CONFLICT: Responses = {409: {"model": ErrorBody, "description": "Conflicts with another resource of this user."}}


@functools.lru_cache(maxsize=64)
def _path_template(app: Starlette, route_name: str, parameter: str) -> str:
    return str(app.url_path_for(route_name, **{parameter: f"{{{parameter}}}"}))


def location(request: Request, route_name: str, parameter: str, value: object) -> str:
    """Path of a resource, e.g. `/api/todos/{id}` (relative `Location`, RFC 9110 §10.2.2).

    The route's path is looked up once per app (a lookup walks every route)."""
    return _path_template(request.app, route_name, parameter).replace(f"{{{parameter}}}", str(value))


PRECONDITION: Responses = {
    412: {"model": ErrorBody, "description": "If-Match did not match the current ETag; nothing changed."},
    428: {"model": ErrorBody, "description": "If-Match is required (REQUIRE_IF_MATCH=true) but was not sent."},
}
IDEMPOTENT: Responses = {
    409: {
        "model": ErrorBody,
        "description": "A request with this Idempotency-Key is still in flight, or a quota is reached.",
    },
}
NOT_MODIFIED: Responses = {304: {"description": "If-None-Match matched the current ETag."}}


def json_bytes_response(body: bytes) -> Response:
    """200 with a JSON body serialised elsewhere (e.g. `DocumentPage.to_json`)."""
    return Response(body, media_type="application/json")


def json_response(item: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The model serialised once, by its own pydantic serializer.

    Handlers return this instead of the model: FastAPI would validate a returned model against
    the `response_model` again before serialising it, which for a page of todos costs more than
    the query. The route still declares `response_model` so the OpenAPI document is unchanged.
    """
    body = item.__pydantic_serializer__.to_json(item)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


def representation(value: Tagged[BaseModel], status_code: int = 200, location: str | None = None) -> Response:
    """A single resource with its strong ETag (and Location for 201), serialised once so an
    idempotent replay can return the very same bytes."""
    headers = {"ETag": value.etag}
    if location is not None:
        headers["Location"] = location
    return json_response(value.item, status_code, headers)


def cached_or(value: Tagged[BaseModel], if_none_match: str | None) -> Response:
    """GET: 304 when the client's copy is current, else the representation with its ETag."""
    if if_none_match_hits(if_none_match, value.etag):
        return Response(status_code=304, headers={"ETag": value.etag})
    return representation(value)
