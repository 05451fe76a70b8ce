"""The one place that turns errors into HTTP responses: application errors (`todo_api.errors`),
request validation, database outages, framework HTTP errors (a complete `Allow` on 405, an
undecodable JSON body reported as the 422 FastAPI gives any other malformed JSON), a write for an
account deleted through another worker, and the last-resort 500 of the request middleware.

Every error body is `{"detail": …, "code": …}`: `detail` for people (FastAPI's shape, a list for
422), `code` (an `ErrorCode`) for programs to branch on."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.status import HTTP_413_CONTENT_TOO_LARGE, HTTP_415_UNSUPPORTED_MEDIA_TYPE

from todo_api.auth.principal import PRINCIPAL_KEY, Principal
from todo_api.context import app_context
from todo_api.errors import RETRY_AFTER_SECONDS, AppError, ErrorCode, ServiceUnavailable, violated_constraint
from todo_api.storage.faults import describe, is_unreachable, sqlstate

logger = logging.getLogger("todo_api.errors")

UNPARSABLE_BODY = "There was an error parsing the body"
_PARAMETER = re.compile(r"\{[^}]+\}")
# The codes of the framework's own HTTP errors (unknown paths, methods, body limits).
FRAMEWORK_CODES = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    HTTP_413_CONTENT_TOO_LARGE: ErrorCode.PAYLOAD_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}
_NO_BODY = frozenset({204, 304})


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


def framework_code(status_code: int) -> ErrorCode:
    default = ErrorCode.INTERNAL_ERROR if status_code >= 500 else ErrorCode.BAD_REQUEST
    return FRAMEWORK_CODES.get(status_code, default)


async def http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allow = allowed_methods(request.app, request.url.path)
        headers = {"Allow": allow} if allow else headers
    if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
        error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}
        return validation_error_response([error])
    if exc.status_code in _NO_BODY:
        return Response(status_code=exc.status_code, headers=headers)
    return error_response(exc.status_code, exc.detail, headers, framework_code(exc.status_code))


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def error_response(
    status_code: int, detail: Any, headers: Mapping[str, str] | None = None, code: ErrorCode | None = None
) -> JSONResponse:
    body = {"detail": json_safe(detail), "code": code or framework_code(status_code)}
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def unavailable_response(
    request_id: str | None,
    retry_after: int = RETRY_AFTER_SECONDS,
    code: ErrorCode = ErrorCode.DATABASE_UNAVAILABLE,
) -> JSONResponse:
    body = {"detail": ServiceUnavailable.detail, "code": code, "request_id": request_id}
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(retry_after)})


def internal_error_response(request_id: str | None) -> JSONResponse:
    body = {"detail": AppError.detail, "code": ErrorCode.INTERNAL_ERROR, "request_id": request_id}
    return JSONResponse(body, status_code=500)


def app_error_response(request: Request, exc: AppError) -> JSONResponse:
    if isinstance(exc, ServiceUnavailable):
        retry_after = int(exc.headers.get("Retry-After", RETRY_AFTER_SECONDS))
        return unavailable_response(_request_id(request), retry_after, exc.code)
    return error_response(exc.status_code, exc.detail, exc.headers, exc.code)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, AppError):  # registered for AppError only
        raise exc
    return app_error_response(request, exc)


# What PostgreSQL says when it cannot do the work now but may soon: 503 + Retry-After, whatever
# exception class the driver picks (a read-only server's 25006 arrives as an InternalError).
UNAVAILABLE_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception (also what PgBouncer reports when it has no server connection)
        "53",  # insufficient resources: too_many_connections, disk_full, out_of_memory
        "57",  # operator intervention: query_canceled (statement timeout), admin/crash shutdown, cannot_connect_now
    }
)
UNAVAILABLE_SQLSTATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: hot standby, failover in progress, default_transaction_read_only
        "25P03",  # idle_in_transaction_session_timeout
        "25P04",  # transaction_timeout
        "40000",  # transaction_rollback
        "40001",  # serialization_failure (retried once first, see storage.database)
        "40003",  # statement_completion_unknown
        "40P01",  # deadlock_detected (retried once first)
        "55P03",  # lock_not_available (lock_timeout)
        "58000",  # system_error
        "58030",  # io_error
    }
)


def is_unavailable_sqlstate(state: str) -> bool:
    return state[:2] in UNAVAILABLE_SQLSTATE_CLASSES or state in UNAVAILABLE_SQLSTATES


def is_database_unavailable(exc: BaseException) -> bool:
    """Pool exhaustion, a transaction deadline, connection loss (also when connecting), and the
    SQLSTATEs above. Any other error PostgreSQL reports is a bug to fix, not to retry: 500."""
    if is_unreachable(exc):
        return True
    state = sqlstate(exc)
    if state is not None:
        return is_unavailable_sqlstate(state)
    # The driver's own errors, unwrapped (connection refused or lost, connect timeout).
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, sa_exc.InterfaceError, OSError))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s", describe(exc), extra={"request_id": _request_id(request)})
        return unavailable_response(_request_id(request))
    raise exc


# Bounds for echoing a value back: nesting depth; integers beyond 64 bits as text (what JSON
# parsers read exactly), beyond ~300 digits only their size (`str()` refuses > 4300 digits).
_MAX_DEPTH = 32
_INT64 = range(-(2**63), 2**64)
_MAX_INT_BITS = 1000
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _scrubbed(text: str) -> str:
    """Lone surrogates (valid in JSON escapes, invalid in UTF-8) become U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as plain JSON data, whatever it is: an error response echoes input and context that
    may hold non-finite floats, huge integers, lone surrogates, bytes or arbitrary objects, and
    building it must never fail. Total: any object yields JSON-encodable data, never an error."""
    if depth > _MAX_DEPTH:
        return "…"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _scrubbed(value)
    if isinstance(value, int):
        if value in _INT64:
            return value
        return str(value) if value.bit_length() <= _MAX_INT_BITS else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE.get(value, "NaN")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {_key(key, depth): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, depth + 1) for item in value]
    try:  # datetimes, UUIDs, enums, models, exceptions (as `{}`, like FastAPI's own handler)…
        encoded = jsonable_encoder(value)
    except Exception:  # whatever it is, the response must still be built
        return f"<{type(value).__name__}>"
    return json_safe(encoded, depth + 1)


def _key(key: Any, depth: int) -> str:
    safe = json_safe(key, depth + 1)
    return safe if isinstance(safe, str) else str(safe)


def validation_error_response(errors: Any) -> JSONResponse:
    """FastAPI's structured 422 (`{"detail": [{type, loc, msg, input, ctx}]}`), built from any errors."""
    return error_response(422, errors, code=ErrorCode.VALIDATION_FAILED)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    return validation_error_response(exc.errors() if isinstance(exc, RequestValidationError) else [])


async def stale_account_handler(request: Request, exc: Exception) -> Response:
    """A write referenced a user row that no longer exists (account deleted via another worker):
    forget the cached id and ask the client to retry, which provisions a fresh account."""
    if not isinstance(exc, sa_exc.IntegrityError) or not (violated_constraint(exc) or "").endswith("_user_id_users"):
        raise exc
    principal = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if isinstance(principal, Principal):
        app_context(request).identities.forget(principal)
    return unavailable_response(_request_id(request), retry_after=1, code=ErrorCode.SERVICE_UNAVAILABLE)


def register(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(psycopg.Error, _database_error)
    app.add_exception_handler(sa_exc.IntegrityError, stale_account_handler)
    app.add_exception_handler(StarletteHTTPException, http_error)
