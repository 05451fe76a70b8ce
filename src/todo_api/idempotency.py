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
from typing import Annotated, Any

from fastapi import Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import BigInteger, Interval, Row, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from todo_api.errors import Conflict, InvalidInput
from todo_api.http.conditional import Tagged
from todo_api.http.responses import location, representation
from todo_api.models.idempotency import idempotency_table
from todo_api.storage.database import Database

keys = idempotency_table.c

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


class KeyInFlight(Conflict):
    detail = "A request with this Idempotency-Key is still in progress; retry later"


def fingerprint(route: str, body: BaseModel) -> str:
    """What makes two requests "the same": route and the validated body (field order is fixed)."""
    return hashlib.sha256(route.encode() + b"\n" + body.model_dump_json().encode()).hexdigest()


def _lock_id(user_id: uuid.UUID, key: str) -> int:
    digest = hashlib.blake2b(user_id.bytes + key.encode(), digest_size=8, person=b"todo-api-idem").digest()
    return int.from_bytes(digest, "big", signed=True)


def _replay(stored: Row[Any]) -> Response:
    headers = {name: str(value) for name, value in stored.headers.items()}
    headers[REPLAYED_HEADER] = "true"
    return Response(stored.body, status_code=stored.status_code, headers=headers, media_type="application/json")


# Built once, values as bind parameters (see todos.repository).
_LOCK = select(func.pg_try_advisory_xact_lock(bindparam("lock_id", type_=BigInteger)))
_RETAINED = keys.created_at > func.now() - bindparam("retention", type_=Interval)
_FIND = select(idempotency_table).where(keys.user_id == bindparam("owner"), keys.key == bindparam("key"), _RETAINED)
_NEW = insert(idempotency_table)
# An expired record under the same key is simply replaced.
_SAVE = _NEW.on_conflict_do_update(
    index_elements=[keys.user_id, keys.key],
    set_={name: _NEW.excluded[name] for name in ("request_hash", "status_code", "headers", "body")}
    | {"created_at": func.now()},
)
_PURGE = delete(idempotency_table).where(keys.created_at < func.now() - bindparam("retention", type_=Interval))


class IdempotencyStore:
    def __init__(self, db: Connection, user_id: uuid.UUID, retention: timedelta) -> None:
        self.db = db
        self.user_id = user_id
        self.retention = retention

    def lock(self, key: str) -> bool:
        """Try the (user, key) lock for the rest of this transaction; False if someone holds it."""
        locked = self.db.execute(_LOCK, {"lock_id": _lock_id(self.user_id, key)})
        return bool(locked.scalar_one())

    def find(self, key: str) -> Row[Any] | None:
        return self.db.execute(_FIND, {"owner": self.user_id, "key": key, "retention": self.retention}).first()

    def save(self, key: str, request_hash: str, response: Response) -> None:
        headers = {name: response.headers[name] for name in STORED_HEADERS if name in response.headers}
        values = {
            "user_id": self.user_id,
            "key": key,
            "request_hash": request_hash,
            "status_code": response.status_code,
            "headers": headers,
            "body": bytes(response.body),
        }
        self.db.execute(_SAVE, values)


def execute_once(
    db: Connection,
    user_id: uuid.UUID,
    key: str,
    request_hash: str,
    retention: timedelta,
    effect: Callable[[Connection], Response],
) -> Response:
    """Run `effect` at most once per (user, key), in the caller's transaction."""
    store = IdempotencyStore(db, user_id, retention)
    if not store.lock(key):
        raise KeyInFlight
    stored = store.find(key)
    if stored is not None:
        if stored.request_hash != request_hash:
            raise InvalidInput(
                ("header", "idempotency-key"), "Idempotency-Key was already used for a different request", key
            )
        return _replay(stored)
    response = effect(db)
    store.save(key, request_hash, response)
    return response


def purge_expired(db: Connection, retention: timedelta) -> None:
    """Forget outcomes older than the retention period."""
    db.execute(_PURGE, {"retention": retention})


async def respond_created(
    request: Request,
    db: Database,
    user_id: uuid.UUID,
    key: str | None,
    body: BaseModel,
    create: Callable[[Connection], Tagged[Any]],
    read_route: tuple[str, str],
) -> Response:
    """201 with `Location` (`read_route`: route name, id parameter) and `ETag` for a resource
    that `create` makes, in one transaction, at most once per `Idempotency-Key`."""

    def effect(connection: Connection) -> Response:
        created = create(connection)
        route_name, id_parameter = read_route
        url = location(request, route_name, id_parameter, created.item.id)
        return representation(created, 201, url)

    if key is None:
        return await db.run(effect)
    settings = request.app.state.settings
    retention = timedelta(hours=settings.idempotency_retention_hours)
    request_hash = fingerprint(f"{request.method} {request.url.path}", body)
    return await db.run(execute_once, user_id, key, request_hash, retention, effect)
