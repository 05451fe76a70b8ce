"""List rules: per-user unique names, counts, keyset pages, and the ownership check todos use."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlmodel import Session

from todo_api.errors import Conflict, NotFound, QuotaExceeded
from todo_api.http.conditional import IfMatch, Tagged, ensure_matches, missing_or_stale
from todo_api.lists.repository import SORTS, DuplicateNameError, ListRecord, ListRepository, ListState
from todo_api.lists.schemas import ListCreate, ListQuery, ListRead, ListUpdate
from todo_api.pagination import Page, decode_cursor, encode_cursor, query_binding
from todo_api.users import service as users

DUPLICATE_NAME = "A list with this name already exists"
_LIST_ETAG = re.compile(r"(\d{1,9})\.(\d{1,9})\.(\d{1,9})")


def _read(record: Any) -> ListRead:
    return ListRead.model_validate(record, from_attributes=True)


def _tagged(record: ListRecord) -> Tagged[ListRead]:
    """A list's ETag covers its counts too: completing a todo in it changes the representation."""
    return Tagged(_read(record), "{}.{}.{}".format(*record.state))


def _states(precondition: IfMatch | None) -> frozenset[ListState] | None:
    if precondition is None or precondition.any_:
        return None
    states = (_LIST_ETAG.fullmatch(value) for value in precondition.values)
    return frozenset(ListState(int(m[1]), int(m[2]), int(m[3])) for m in states if m)


def create_list(session: Session, user_id: uuid.UUID, data: ListCreate, limit: int) -> Tagged[ListRead]:
    """Create a list; at most `limit` per user (0: unlimited), checked in the same statement."""
    try:
        created = ListRepository(session, user_id).create(data.name, limit)
    except DuplicateNameError:
        raise Conflict(DUPLICATE_NAME) from None
    if created is None:
        users.require_account(session, user_id)
        raise QuotaExceeded(f"List limit reached: at most {limit} lists per user")
    return _tagged(created)


def get_list(session: Session, user_id: uuid.UUID, list_id: uuid.UUID) -> Tagged[ListRead]:
    row = ListRepository(session, user_id).get(list_id)
    if row is None:
        raise NotFound
    return _tagged(row)


def update_list(
    session: Session,
    user_id: uuid.UUID,
    list_id: uuid.UUID,
    data: ListCreate | ListUpdate,
    precondition: IfMatch | None,
) -> Tagged[ListRead]:
    """PUT (ListCreate: every field) and PATCH (ListUpdate: the fields sent), checked and written
    in one statement."""
    changes = data.changes() if isinstance(data, ListUpdate) else data.model_dump()
    if "name" not in changes:
        return ensure_matches(precondition, get_list(session, user_id, list_id))
    repository = ListRepository(session, user_id)
    try:
        row = repository.update(list_id, changes["name"], _states(precondition))
    except DuplicateNameError:
        raise Conflict(DUPLICATE_NAME) from None
    if row is None:
        missing_or_stale(repository.get(list_id))
    return _tagged(row)


def delete_list(session: Session, user_id: uuid.UUID, list_id: uuid.UUID, precondition: IfMatch | None) -> None:
    repository = ListRepository(session, user_id)
    if not repository.delete(list_id, _states(precondition)):
        missing_or_stale(repository.get(list_id))


def list_lists(session: Session, user_id: uuid.UUID, query: ListQuery) -> Page[ListRead]:
    spec = SORTS[query.sort]
    binding = query_binding(user_id, [query.sort])
    after = decode_cursor(query.cursor, spec, binding) if query.cursor else None
    rows = ListRepository(session, user_id).page(spec, after, query.limit + 1)
    items = [_read(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(spec, last.sort_value, last.id, binding)
    return Page[ListRead](items=items, next_cursor=next_cursor)
