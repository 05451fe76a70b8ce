"""Response documentation shared by resource routers, and the `Location` of created resources.

Every error a route can answer is declared with its body (`ErrorBody`: `detail` and `code`) and
the headers a client relies on; `X-Request-ID`, which every response carries, is added to each
response by `todo_api.http.openapi`."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette

from todo_api.errors import ErrorCode
from todo_api.http.conditional import Tagged, if_none_match_hits

CODE_DESCRIPTION = "What went wrong, for programs to branch on (stable; `detail` is for people)."


class ErrorBody(BaseModel):
    """An error: `detail` says what went wrong, `code` says it for programs."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "Not found", "code": "not_found"}]})

    detail: str = Field(description="A message for people; may change between versions.")
    code: ErrorCode = Field(description=CODE_DESCRIPTION)


class ServerErrorBody(ErrorBody):
    """500 or 503: `request_id` is also in the server's log line for this request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "Service temporarily unavailable",
                    "code": "database_unavailable",
                    "request_id": "4f1c2b7e9a0d4c3e8b6a5f4e3d2c1b0a",
                }
            ]
        }
    )

    request_id: str | None = Field(description="The request's `X-Request-ID`.")


type Responses = dict[int | str, dict[str, Any]]


def _header(description: str, schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


RETRY_AFTER = _header("Seconds to wait before retrying.", {"type": "integer", "minimum": 1, "examples": [2]})
ETAG = _header(
    "Strong entity tag of this representation: send it as `If-Match` to write, `If-None-Match` to revalidate.",
    {"type": "string", "examples": ['"3"']},
)
LOCATION = _header("Path of the new resource.", {"type": "string", "examples": ["/api/todos/{id}"]})
REPLAYED = _header(
    "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`.",
    {"type": "string", "enum": ["true"]},
    required=False,
)
WWW_AUTHENTICATE = _header("`Bearer`, with `error` and `scope` on 403.", {"type": "string", "examples": ["Bearer"]})


def _error(
    description: str, model: type[BaseModel] = ErrorBody, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"model": model, "description": description} | ({"headers": headers} if headers else {})


ACCOUNT_DELETED = "`account_deleted`: the account was deleted while this request was in progress; nothing was written."
IN_FLIGHT = (
    "`idempotency_in_flight`: a request with this `Idempotency-Key` is still in progress; retry after `Retry-After`."
)
QUOTA = "`quota_exceeded`: MAX_TODOS_PER_USER / MAX_LISTS_PER_USER reached."
DUPLICATE = "`duplicate_name`: the user already has a list with this name (case-insensitively)."


def conflicts(*reasons: str) -> Responses:
    """409, told apart by `code`: the given reasons, plus `account_deleted` (any route)."""
    retry = {"Retry-After": {**RETRY_AFTER, "required": False}} if IN_FLIGHT in reasons else None
    return {409: _error(" ".join(("Conflict.", *reasons, ACCOUNT_DELETED)), headers=retry)}


COMMON: Responses = {
    401: _error("`unauthenticated`: missing or invalid token.", headers={"WWW-Authenticate": WWW_AUTHENTICATE}),
    403: _error(
        "`insufficient_scope`: the token lacks the scope this method needs.",
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    ),
    **conflicts(),
    413: _error("`payload_too_large`: the request body is larger than MAX_BODY_BYTES."),
    429: _error(
        "`rate_limited`: per-user rate limit reached; retry after `Retry-After`.", headers={"Retry-After": RETRY_AFTER}
    ),
    500: _error("`internal_error`: a bug; `request_id` finds it in the log.", ServerErrorBody),
    503: _error(
        "`database_unavailable` or `service_unavailable` (the identity provider's keys): retry after `Retry-After`.",
        ServerErrorBody,
        headers={"Retry-After": RETRY_AFTER},
    ),
}
NOT_FOUND: Responses = {404: _error("`not_found`: no such resource for this user.")}
GONE: Responses = {
    410: _error("`sync_token_expired`: deletions since this sync token were purged; full-sync (no `sync_token`).")
}
UNSUPPORTED: Responses = {
    415: {
        # Added by the route class to every route that takes a body (after FastAPI built the
        # route's response models), so the schema is named, not declared as a model.
        "description": "`unsupported_media_type`: the body was not sent as `Content-Type: application/json`.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
}
PRECONDITION: Responses = {
    412: _error("`precondition_failed`: If-Match did not match the current ETag; nothing changed."),
    428: _error("`precondition_required`: If-Match is required (REQUIRE_IF_MATCH=true) but was not sent."),
}
TAGGED: Responses = {200: {"description": "The resource, with its ETag.", "headers": {"ETag": ETAG}}}
CREATED: Responses = {
    201: {
        "description": "Created (or, with a known `Idempotency-Key`, the stored first response).",
        "headers": {"Location": LOCATION, "ETag": ETAG, "Idempotent-Replayed": REPLAYED},
    }
}
NOT_MODIFIED: Responses = {304: {"description": "If-None-Match matched the current ETag.", "headers": {"ETag": ETAG}}}


@functools.lru_cache(maxsize=64)
def _path_template(app: Starlette, route_name: str, parameter: str) -> str:
    return str(app.url_path_for(route_name, **{parameter: f"{{{parameter}}}"}))


def location(request: Request, route_name: str, parameter: str, value: object) -> str:
    """Path of a resource, e.g. `/api/todos/{id}` (relative `Location`, RFC 9110 §10.2.2).

    The route's path is looked up once per app (a lookup walks every route)."""
    return _path_template(request.app, route_name, parameter).replace(f"{{{parameter}}}", str(value))


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
