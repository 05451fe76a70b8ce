"""Framework-level HTTP errors made precise: a complete `Allow` on 405, and an undecodable
JSON body reported as the 422 FastAPI gives any other malformed JSON (not a bare 400)."""

from __future__ import annotations

import re
from functools import cache

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

UNPARSABLE_BODY = "There was an error parsing the body"
_PARAMETER = re.compile(r"\{[^}]+\}")


@cache
def _route_methods(app: FastAPI) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(path pattern, `Allow` value) for every documented path, from the app's own OpenAPI."""
    routes = []
    for template, operations in app.openapi()["paths"].items():
        pattern = re.compile(
            "^" + _PARAMETER.sub("[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        )
        routes.append((pattern, ", ".join(sorted(method.upper() for method in operations))))
    return tuple(routes)


def allowed_methods(app: FastAPI, path: str) -> str | None:
    return next((allow for pattern, allow in _route_methods(app) if pattern.match(path)), None)


async def http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    if exc.status_code == 405:
        allow = allowed_methods(request.app, request.url.path)
        headers = {"Allow": allow} if allow else dict(exc.headers or {})
        return JSONResponse({"detail": exc.detail}, status_code=405, headers=headers)
    if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
        error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}
        return JSONResponse({"detail": [error]}, status_code=422)
    return await http_exception_handler(request, exc)


def register(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
