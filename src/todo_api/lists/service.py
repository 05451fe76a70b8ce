"""List rules: per-user unique names, counts, keyset pages, and the ownership check todos use."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine import Connection

from todo_api.errors import Conflict, NotFound, QuotaExceeded
from todo_api.http.conditional import ETag, Precondition, Tagged, accepted, decimal, ensure_matches, missing_or_stale
from todo_api.lists.repository import SORTS, DuplicateNameError, ListRepository, Version
from todo_api.lists.schemas import ListCreate, ListQuery, ListRead, ListUpdate
from todo_api.pagination import Page, decode_cursor, encode_cursor, query_binding
from todo_api.quota import Quota
from todo_api.sealed import Sealer

DUPLICATE_NAME = "A list with this name already exists"


class ListETag(ETag[Version]):
    """`"<version>.<todo_count>.<open_count>"`: a list's representation includes its counts, so
    completing a todo in it changes its ETag too."""

    def opaque(self, version: Version) -> str:
        return "{}.{}.{}".format(*version)

    def parse(self, opaque: str) -> Version | None:
        numbers = [decimal(part) for part in opaque.split(".")]
        match numbers:
            case [int(version), int(todo_count), int(open_count)]:
                return version, todo_count, open_count
        return None


ETAG = ListETag()


def _read(row: Row[Any]) -> ListRead:
    return ListRead.model_validate(row, from_attributes=True)


def _version(row: Row[Any]) -> Version:
    return row.version, row.todo_count, row.open_count


def _tagged(row: Row[Any]) -> Tagged[ListRead]:
    return ETAG.tagged(_read(row), _version(row))


def is_owned(db: Connection, user_id: uuid.UUID, list_id: uuid.UUID) -> bool:
    return ListRepository(db, user_id).exists(list_id)


def create_list(db: Connection, user_id: uuid.UUID, data: ListCreate, quota: Quota) -> Tagged[ListRead]:
    """Create a list; at most `quota.limit` per user (0: unlimited)."""
    repository = ListRepository(db, user_id)
    if not quota.gauge.admits("lists", user_id, quota.limit, repository.count):
        raise QuotaExceeded(f"List limit reached: at most {quota.limit} lists per user")
    try:
        created = repository.create(data.name)
    except DuplicateNameError:
        raise Conflict(DUPLICATE_NAME) from None
    return _tagged(created)


def _get(repository: ListRepository, list_id: uuid.UUID) -> Row[Any]:
    row = repository.get(list_id)
    if row is None:
        raise NotFound
    return row


def get_list(db: Connection, user_id: uuid.UUID, list_id: uuid.UUID) -> Tagged[ListRead]:
    return _tagged(_get(ListRepository(db, user_id), list_id))


def update_list(
    db: Connection,
    user_id: uuid.UUID,
    list_id: uuid.UUID,
    data: ListCreate | ListUpdate,
    precondition: Precondition[Version] | None,
) -> Tagged[ListRead]:
    """PUT (ListCreate: every field) and PATCH (ListUpdate: the fields sent), checked and written
    in one statement."""
    changes = data.changes() if isinstance(data, ListUpdate) else data.model_dump()
    repository = ListRepository(db, user_id)
    if not changes:
        current = _get(repository, list_id)
        ensure_matches(precondition, _version(current))
        return _tagged(current)
    try:
        row = repository.update(list_id, changes, accepted(precondition))
    except DuplicateNameError:
        raise Conflict(DUPLICATE_NAME) from None
    if row is None:
        missing_or_stale(repository.get(list_id))
    return _tagged(row)


def delete_list(
    db: Connection, user_id: uuid.UUID, list_id: uuid.UUID, precondition: Precondition[Version] | None
) -> None:
    repository = ListRepository(db, user_id)
    if not repository.delete(list_id, accepted(precondition)):
        missing_or_stale(repository.get(list_id))


def list_lists(db: Connection, user_id: uuid.UUID, query: ListQuery, cursors: Sealer) -> Page[ListRead]:
    spec = SORTS[query.sort]
    binding = query_binding(user_id, [query.sort])
    after = decode_cursor(cursors, query.cursor, spec, binding) if query.cursor else None
    rows = ListRepository(db, user_id).page(spec, after, query.limit + 1)
    items = [_read(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(cursors, spec, last.sort_value, last.id, binding)
    return Page[ListRead](items=items, next_cursor=next_cursor)
