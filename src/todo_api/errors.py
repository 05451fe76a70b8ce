"""Errors that carry their HTTP status, and the one place that turns errors into responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

logger = logging.getLogger("todo_api.errors")

RETRY_AFTER_SECONDS = 2


class AppError(Exception):
    """An error with a safe, client-facing `detail`; subclasses fix the status."""

    status_code = 500
    detail: Any = "Internal server error"

    def __init__(self, detail: Any = None, *, headers: Mapping[str, str] | None = None) -> None:
        if detail is not None:
            self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(str(self.detail))


class NotAuthenticated(AppError):
    """401: one generic message for every token failure (no hints for an attacker)."""

    status_code = 401
    detail = "Not authenticated"

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class InsufficientScope(AppError):
    status_code = 403
    detail = "Insufficient scope"

    def __init__(self, scope: str) -> None:
        super().__init__(headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})


class InvalidInput(AppError):
    """422 in FastAPI's own validation-error shape, for rules only the service can check
    (a `list_id` that is not one of the user's lists, a bad cursor)."""

    status_code = 422

    def __init__(self, loc: tuple[str | int, ...], message: str, value: Any = None) -> None:
        super().__init__([{"type": "value_error", "loc": list(loc), "msg": message, "input": value}])


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflict"


class QuotaExceeded(Conflict):
    """409: a per-user row cap (MAX_TODOS_PER_USER, MAX_LISTS_PER_USER) is reached."""


class TooManyRequests(AppError):
    status_code = 429
    detail = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    """503: a dependency (database, JWKS endpoint) is down; the client may retry."""

    status_code = 503
    detail = "Service temporarily unavailable"

    def __init__(self, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def error_response(status_code: int, detail: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=dict(headers or {}))


def unavailable_response(request_id: str | None, retry_after: int = RETRY_AFTER_SECONDS) -> JSONResponse:
    body = {"detail": ServiceUnavailable.detail, "request_id": request_id}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry_after)})


def internal_error_response(request_id: str | None) -> JSONResponse:
    return JSONResponse({"detail": AppError.detail, "request_id": request_id}, status_code=500)


def app_error_response(request: Request, exc: AppError) -> JSONResponse:
    if isinstance(exc, ServiceUnavailable):
        return unavailable_response(_request_id(request), int(exc.headers.get("Retry-After", RETRY_AFTER_SECONDS)))
    return error_response(exc.status_code, exc.detail, exc.headers)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, AppError):  # registered for AppError only
        raise exc
    return app_error_response(request, exc)


def violated_constraint(exc: sa_exc.IntegrityError) -> str | None:
    """Name of the constraint (or unique index) PostgreSQL reports as violated."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return name if isinstance(name, str) else None


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection loss, refused connections, pool exhaustion and statement timeouts."""
    if isinstance(exc, sa_exc.TimeoutError):  # pool wait timed out
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, sa_exc.InterfaceError, OSError))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__, extra={"request_id": _request_id(request)})
        return unavailable_response(_request_id(request))
    raise exc


def _json_safe(value: Any) -> Any:
    """Lone surrogates (valid in JSON escapes, invalid in UTF-8) become U+FFFD when echoed back."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(item) for key, item in value.items()}
    return value


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's structured 422 (`{"detail": [{type, loc, msg, input, ctx}]}`), safe to encode."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": _json_safe(jsonable_encoder(errors))}, status_code=422)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(psycopg.OperationalError, _database_error)
