"""The route class of every API route: request bodies are JSON, declared as such and parsed strictly.

A body must come with `Content-Type: application/json` (or another `application/…+json` type),
else 415: FastAPI would hand the raw bytes to validation and answer a 422 about dictionaries.

Python's `json` module, which Starlette's `Request.json()` uses, accepts `NaN`, `Infinity` and
`-Infinity` and turns `1e999` into an infinite float; a lone surrogate escape (`"\\ud800"`) becomes
a `str` that cannot be encoded again. orjson refuses all of these, and its `JSONDecodeError` is a
`json.JSONDecodeError`, which FastAPI's body reader turns into its structured 422
(`type: json_invalid`) like any other malformed JSON.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from todo_api.errors import UnsupportedMediaType
from todo_api.http.query_models import QueryModel
from todo_api.http.responses import UNSUPPORTED


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


def is_json(content_type: str | None) -> bool:
    """`application/json` or `application/<anything>+json`, with any parameters (FastAPI's rule)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def has_body(request: Request) -> bool:
    """HTTP/1.1 framing: a body comes with a non-zero Content-Length (digits only, checked by
    `BodyLimitMiddleware`) or with Transfer-Encoding."""
    length = request.headers.get("content-length")
    return (length is not None and length.strip("0") != "") or "transfer-encoding" in request.headers


class StrictJsonRoute(APIRoute):
    """`APIRouter(route_class=StrictJsonRoute)` on every resource router (`include_router` keeps a
    route's own class, so the `/api` router's class would not reach them; a test checks them all)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is not None:
            self.responses = {**self.responses, **UNSUPPORTED}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None
        query_model = QueryModel.of(self.dependant)
        prevalidated = handler
        if query_model is not None:  # a second handler, given the model (see `query_models`)
            declared, self.dependant = self.dependant, query_model.prevalidated(self.dependant)
            try:
                prevalidated = super().get_route_handler()
            finally:
                self.dependant = declared

        if not takes_body and query_model is None:
            return handler  # nothing to check or parse: FastAPI's handler as it is

        async def strict_json_handler(request: Request) -> Response:
            if takes_body and has_body(request) and not is_json(request.headers.get("content-type")):
                raise UnsupportedMediaType
            strict = StrictJsonRequest(request.scope, request.receive)
            if query_model is not None and query_model.accept(strict):
                return await prevalidated(strict)
            return await handler(strict)

        return strict_json_handler
