"""The route class of every API route: request bodies are parsed as strict JSON (RFC 8259).

Python's `json` module, which Starlette's `Request.json()` uses, accepts `NaN`, `Infinity` and
`-Infinity` and turns `1e999` into an infinite float; a lone surrogate escape (`"\\ud800"`) becomes
a `str` that cannot be encoded again. orjson refuses all of these, and its `JSONDecodeError` is a
`json.JSONDecodeError`, which FastAPI's body reader turns into its structured 422
(`type: json_invalid`) like any other malformed JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """`APIRouter(route_class=StrictJsonRoute)` on every resource router (`include_router` keeps a
    route's own class, so the `/api` router's class would not reach them; a test checks them all)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json_handler
