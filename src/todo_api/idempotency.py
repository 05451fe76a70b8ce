"""Safe retries for non-idempotent writes: `Idempotency-Key`.

Within the request's transaction: take a transaction-scoped advisory lock on (user, key) — if
another request holds it, that request is still in flight → 409. Otherwise replay a stored
outcome (same request) or refuse a different request under the same key (422), or run the
effect and store its outcome in the same transaction. The lock is released by the commit that
makes the outcome visible, so no second execution can slip in between.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, NamedTuple

from fastapi import Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import BigInteger, Interval, bindparam
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, delete, func, select

from todo_api.auth.current import CurrentUser
from todo_api.context import app_context
from todo_api.errors import Conflict, ErrorCode, IdempotencyKeyReused
from todo_api.http.conditional import Tagged
from todo_api.http.responses import location, representation
from todo_api.models import IdempotencyKey
from todo_api.models.scoping import OWNER, owned_idempotency_keys
from todo_api.pagination import select_columns

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
REPLAYED_HEADER = "Idempotent-Replayed"
STORED_HEADERS = ("location", "etag")

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="1–255 visible ASCII characters. A retry with the same key and body replays the first "
        "response; the same key with another body is 422; while the first is in flight, 409. Kept 24 h.",
    ),
]


IN_FLIGHT_RETRY_AFTER_SECONDS = 1  # the first request is usually done within its statement timeout


class KeyInFlight(Conflict):
    code = ErrorCode.IDEMPOTENCY_IN_FLIGHT
    detail = "A request with this Idempotency-Key is still in progress; retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)})


def fingerprint(route: str, body: BaseModel) -> str:
    """What makes two requests "the same": route and the validated body (field order is fixed)."""
    return hashlib.sha256(route.encode() + b"\n" + body.model_dump_json().encode()).hexdigest()


def _lock_id(user_id: uuid.UUID, key: str) -> int:
    digest = hashlib.blake2b(user_id.bytes + key.encode(), digest_size=8, person=b"todo-api-idem").digest()
    return int.from_bytes(digest, "big", signed=True)


class StoredOutcome(NamedTuple):
    request_hash: str
    status_code: int
    headers: dict[str, Any]
    body: bytes


def _replay(stored: StoredOutcome) -> Response:
    headers = {name: str(value) for name, value in stored.headers.items()}
    headers[REPLAYED_HEADER] = "true"
    return Response(stored.body, status_code=stored.status_code, headers=headers, media_type="application/json")


# Built once, values as bind parameters (see todos.repository).
_LOCK = select(func.pg_try_advisory_xact_lock(bindparam("lock_id", type_=BigInteger)))
_RETAINED = col(IdempotencyKey.created_at) > func.now() - bindparam("retention", type_=Interval)
_FIND = select_columns(*(col(getattr(IdempotencyKey, name)) for name in StoredOutcome._fields)).where(
    owned_idempotency_keys(), col(IdempotencyKey.key) == bindparam("key"), _RETAINED
)
_NEW = postgresql.insert(IdempotencyKey)
# An expired record under the same key is simply replaced.
_SAVE = _NEW.on_conflict_do_update(
    index_elements=[col(IdempotencyKey.user_id), col(IdempotencyKey.key)],
    set_={name: _NEW.excluded[name] for name in ("request_hash", "status_code", "headers", "body")}
    | {"created_at": func.now()},
    where=owned_idempotency_keys(),
)
# Housekeeping across all users (not a request's statement): see `purge_expired`.
_PURGE = (
    delete(IdempotencyKey)
    .where(col(IdempotencyKey.created_at) < func.now() - bindparam("retention", type_=Interval))
    .execution_options(synchronize_session=False, all_users=True)
)


class IdempotencyStore:
    def __init__(self, session: Session, user_id: uuid.UUID, retention: timedelta) -> None:
        self.session = session
        self.user_id = user_id
        self.retention = retention

    def lock(self, key: str) -> bool:
        """Try the (user, key) lock for the rest of this transaction; False if someone holds it."""
        return bool(self.session.exec(_LOCK, params={"lock_id": _lock_id(self.user_id, key)}).one())

    def find(self, key: str) -> StoredOutcome | None:
        params = {OWNER: self.user_id, "key": key, "retention": self.retention}
        row = self.session.exec(_FIND, params=params).first()
        return None if row is None else StoredOutcome._make(row)

    def save(self, key: str, request_hash: str, response: Response) -> None:
        headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
        values = {
            "user_id": self.user_id,
            OWNER: self.user_id,
            "key": key,
            "request_hash": request_hash,
            "status_code": response.status_code,
            "headers": headers,
            "body": bytes(response.body),
        }
        self.session.exec(_SAVE, params=values)


def execute_once(
    session: Session,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    retention: timedelta,
    effect: Callable[[Session, uuid.UUID], Response],
) -> Response:
    """Run `effect` at most once per (user, key), in the caller's transaction."""
    store = IdempotencyStore(session, user_id, retention)
    if not store.lock(key):
        raise KeyInFlight
    stored = store.find(key)
    if stored is not None:
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused(
                ("header", "idempotency-key"), "Idempotency-Key was already used for a different request", key
            )
        return _replay(stored)
    response = effect(session, user_id)
    store.save(key, request_hash, response)
    return response


def purge_expired(session: Session, retention: timedelta) -> None:
    """Forget outcomes older than the retention period (every user's: housekeeping)."""
    session.exec(_PURGE, params={"retention": retention})


async def respond_created(
    request: Request,
    user: CurrentUser,
    key: str | None,
    body: BaseModel,
    create: Callable[[Session, uuid.UUID], Tagged[Any]],
    read_route: tuple[str, str],
) -> Response:
    """201 with `Location` (`read_route`: route name, id parameter) and `ETag` for a resource
    that `create(session, user_id)` makes, in one transaction, at most once per `Idempotency-Key`."""

    def created_response(session: Session, user_id: uuid.UUID) -> Response:
        created = create(session, user_id)
        route_name, id_parameter = read_route
        url = location(request, route_name, id_parameter, created.item.id)
        return representation(created, 201, url)

    if key is None:
        return await user.run(created_response)
    settings = app_context(request).settings
    retention = timedelta(hours=settings.idempotency_retention_hours)
    request_hash = fingerprint(f"{request.method} {request.url.path}", body)
    return await user.run(execute_once, key, request_hash, retention, created_response)
