"""Request context: request id, security headers, the access log line, and the last-resort 500."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.http.errors import error_response, internal_error_response, is_database_unavailable, unavailable_response

logger = logging.getLogger("todo_api.access")
error_logger = logging.getLogger("todo_api.errors")

# Echoed only when it is plain ASCII of a sane length (it goes into logs and response headers).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTENT_LENGTH = re.compile(r"[0-9]+")
_MAX_DIGITS = 18  # more digits than any body cap has
REQUEST_ID_HEADER = "x-request-id"
RECEIVED_AT = "received_at"

NO_BODY_STATUSES = frozenset({204, 304})
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class Activity:
    """Requests this worker has started (counted by `RequestContextMiddleware`)."""

    __slots__ = ("requests",)

    def __init__(self) -> None:
        self.requests = 0


def route_template(scope: Scope) -> str:
    """`/api/todos/{todo_id}`, not the raw path: ids stay out of the access log's route field.

    FastAPI >= 0.16x matches included routers lazily and keeps the full template on its effective
    route context; older versions keep it on `scope["route"]`.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else "(unmatched)"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


class RequestContextMiddleware:
    """Outermost app middleware: every response, errors included, gets `X-Request-ID`,
    `Cache-Control: no-store` and `nosniff`; each request logs one structured line."""

    def __init__(self, app: ASGIApp, activity: Activity | None = None) -> None:
        self.app = app
        self.activity = activity or Activity()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.activity.requests += 1
        request_id = _incoming_request_id(scope) or os.urandom(16).hex()  # like uuid4().hex, 1.7 µs less
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        state[RECEIVED_AT] = time.time()
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                if status in NO_BODY_STATUSES:
                    del headers["content-type"]
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            status = 503 if is_database_unavailable(exc) else 500
            if status == 500:
                error_logger.exception("unhandled error", extra={"request_id": request_id})
            if not response_started:
                response = unavailable_response(request_id) if status == 503 else internal_error_response(request_id)
                await response(scope, receive, send_with_headers)
        finally:
            if logger.isEnabledFor(logging.INFO):
                _log_access(scope, state, status, started)


def received_at(request: HTTPConnection) -> datetime:
    """When the request arrived (this worker's clock)."""
    seconds = request.scope.get("state", {}).get(RECEIVED_AT)
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, float) else datetime.now(UTC)


def _log_access(scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
    """One structured line per request (built only when INFO is on)."""
    logger.info(
        "request",
        extra={
            "method": scope.get("method"),
            "route": route_template(scope),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "request_id": state.get("request_id"),
            "user_id": state.get("user_id"),
        },
    )


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the cap. FastAPI re-raises HTTPExceptions
    from body reading as they are (anything else becomes a 400), so this ends as a JSON 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"Request body too large (limit {limit} bytes)")


class BodyLimitMiddleware:
    """413 for bodies over the cap: at once when Content-Length says so, and while streaming when
    the body is chunked or Content-Length understates it. `overrides`: other caps for exact paths
    (`/api/batch` takes up to 1 MiB)."""

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.overrides.get(scope.get("path", ""), self.default_max_bytes)
        refusal = self._refusal(Headers(scope=scope).get("content-length"), max_bytes)
        if refusal is not None:
            status, detail = refusal
            await error_response(status, detail)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    def _refusal(self, declared: str | None, max_bytes: int | None = None) -> tuple[int, str] | None:
        """Content-Length = 1*DIGIT, ASCII digits only (`str.isdigit` and `int` take "²" and
        Arabic-Indic digits too): 400 when malformed, 413 when over the cap."""
        if declared is None:
            return None
        max_bytes = self.default_max_bytes if max_bytes is None else max_bytes
        if not _CONTENT_LENGTH.fullmatch(declared):
            return 400, "Bad Content-Length"
        # Long digit strings are over any cap; `int()` of more than 4300 digits (leading zeros
        # included) would raise.
        significant = declared.lstrip("0") or "0"
        if len(significant) > _MAX_DIGITS or int(significant) > max_bytes:
            return 413, BodyTooLarge(max_bytes).detail
        return None
