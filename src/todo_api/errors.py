"""Errors that carry their HTTP status. Services raise them; `todo_api.http.errors` turns them into responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exc as sa_exc

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


def violated_constraint(exc: sa_exc.IntegrityError) -> str | None:
    """Name of the constraint (or unique index) PostgreSQL reports as violated."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return name if isinstance(name, str) else None


class AccountDeleted(Conflict):
    """409: the account was deleted while this request was being processed; nothing was written."""

    detail = "The account was deleted while this request was in progress; nothing was written"


class AccountGone(ServiceUnavailable):
    """The user row this request resolved its token to no longer exists: the account was deleted.
    Caught by `CurrentUser.run`, which either refuses the request (`AccountDeleted`: the deletion
    happened while it was in flight) or starts a fresh account and runs the work once more (a
    worker's cached identity was stale). A 503 (retry) only if it ever escaped."""

    def __init__(self) -> None:
        super().__init__(retry_after=1)
