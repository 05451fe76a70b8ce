"""Errors that carry their HTTP status. Services raise them; `todo_api.http.errors` turns them into responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from sqlalchemy import exc as sa_exc

from todo_api.fields import ApiEnum

RETRY_AFTER_SECONDS = 2


class ErrorCode(ApiEnum):
    """What went wrong, for programs: every error body's `code` (next to the human `detail`).
    Stable: a code is never renamed or reused for another meaning; new ones may be added."""

    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    DUPLICATE_NAME = "duplicate_name"
    QUOTA_EXCEEDED = "quota_exceeded"
    IDEMPOTENCY_IN_FLIGHT = "idempotency_in_flight"
    ACCOUNT_DELETED = "account_deleted"
    PRECONDITION_FAILED = "precondition_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_FAILED = "validation_failed"
    INVALID_CURSOR = "invalid_cursor"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    PRECONDITION_REQUIRED = "precondition_required"
    RATE_LIMITED = "rate_limited"
    LIST_IN_TRASH = "list_in_trash"
    PARENT_IN_TRASH = "parent_in_trash"
    INVALID_SYNC_TOKEN = "invalid_sync_token"  # noqa: S105 (a code, not a secret)
    SYNC_TOKEN_EXPIRED = "sync_token_expired"  # noqa: S105
    INTERNAL_ERROR = "internal_error"
    DATABASE_UNAVAILABLE = "database_unavailable"
    SERVICE_UNAVAILABLE = "service_unavailable"


class AppError(Exception):
    """An error with a safe, client-facing `detail` and a stable `code`; subclasses fix both and the status."""

    status_code = 500
    code = ErrorCode.INTERNAL_ERROR
    detail: Any = "Internal server error"
    # Raised only on finding a row of the account (a todo in another version, a list of that name):
    # the account exists, so `CurrentUser` need not check it for a cached id (one round trip less).
    found_the_account: ClassVar[bool] = False

    def __init__(self, detail: Any = None, *, headers: Mapping[str, str] | None = None) -> None:
        if detail is not None:
            self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(str(self.detail))


class NotAuthenticated(AppError):
    """401: one generic message for every token failure (no hints for an attacker)."""

    status_code = 401
    code = ErrorCode.UNAUTHENTICATED
    detail = "Not authenticated"

    def __init__(self) -> None:
        super().__init__(headers={"WWW-Authenticate": "Bearer"})


class InsufficientScope(AppError):
    status_code = 403
    code = ErrorCode.INSUFFICIENT_SCOPE
    detail = "Insufficient scope"

    def __init__(self, scope: str) -> None:
        super().__init__(headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})


class InvalidInput(AppError):
    """422 in FastAPI's own validation-error shape, for rules only the service can check
    (a `list_id` that is not one of the user's lists, a bad cursor)."""

    status_code = 422
    code = ErrorCode.VALIDATION_FAILED

    def __init__(self, loc: tuple[str | int, ...], message: str, value: Any = None) -> None:
        super().__init__([{"type": "value_error", "loc": list(loc), "msg": message, "input": value}])


class InvalidCursor(InvalidInput):
    """422: a `cursor` that is not the `next_cursor` of this query (clients restart from page 1)."""

    code = ErrorCode.INVALID_CURSOR


class IdempotencyKeyReused(InvalidInput):
    """422: the `Idempotency-Key` was already used for a request with another body."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class NotFound(AppError):
    status_code = 404
    code = ErrorCode.NOT_FOUND
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    code = ErrorCode.CONFLICT
    detail = "Conflict"


class DuplicateName(Conflict):
    """409: the user already has a resource with this name."""

    code = ErrorCode.DUPLICATE_NAME
    found_the_account = True


class QuotaExceeded(Conflict):
    """409: a per-user row cap (MAX_TODOS_PER_USER, MAX_LISTS_PER_USER) is reached."""

    code = ErrorCode.QUOTA_EXCEEDED
    found_the_account = True


class UnsupportedMediaType(AppError):
    """415: a body that is not declared as JSON (`Content-Type: application/json` or `…+json`)."""

    status_code = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE
    detail = "Unsupported media type: send the body as JSON, with Content-Type: application/json"


class TooManyRequests(AppError):
    status_code = 429
    code = ErrorCode.RATE_LIMITED
    detail = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    """503: a dependency (database, JWKS endpoint) is down; the client may retry."""

    status_code = 503
    code = ErrorCode.SERVICE_UNAVAILABLE
    detail = "Service temporarily unavailable"

    def __init__(self, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


def violated_constraint(exc: sa_exc.IntegrityError) -> str | None:
    """Name of the constraint (or unique index) PostgreSQL reports as violated."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return name if isinstance(name, str) else None


class AccountDeleted(Conflict):
    """409: the account was deleted while this request was being processed; nothing was written."""

    code = ErrorCode.ACCOUNT_DELETED
    detail = "The account was deleted while this request was in progress; nothing was written"


class AccountGone(ServiceUnavailable):
    """The user row this request resolved its token to no longer exists: the account was deleted.
    Caught by `CurrentUser.run`, which either refuses the request (`AccountDeleted`: the deletion
    happened while it was in flight) or starts a fresh account and runs the work once more (a
    worker's cached identity was stale). A 503 (retry) only if it ever escaped."""

    def __init__(self) -> None:
        super().__init__(retry_after=1)


class ListInTrash(Conflict):
    """409: restoring a todo whose list is in the trash (restore the list: its todos come back with it)."""

    code = ErrorCode.LIST_IN_TRASH
    found_the_account = True
    detail = "This todo's list is in the trash: restore the list first (its todos come back with it)"


class ParentInTrash(Conflict):
    """409: restoring a subtask whose parent is in the trash (restore the parent: its subtasks come
    back with it)."""

    code = ErrorCode.PARENT_IN_TRASH
    found_the_account = True
    detail = "This todo's parent is in the trash: restore the parent first (its subtasks come back with it)"


class InvalidSyncToken(InvalidInput):
    """422: a `sync_token` this server did not hand to this user (edited, forged, another user's)."""

    code = ErrorCode.INVALID_SYNC_TOKEN


class SyncTokenExpired(AppError):
    """410: deletions this token would need were purged; the client starts again with a full sync."""

    status_code = 410
    code = ErrorCode.SYNC_TOKEN_EXPIRED
    detail = (
        "This sync_token is too old: deletions since it were purged. Discard the local copy and "
        "full-sync (call without sync_token)"
    )
