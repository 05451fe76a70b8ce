"""List rules: per-user unique names, counts, caps and keyset pages."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from todo_api.errors import DuplicateName, NotFound, QuotaExceeded
from todo_api.http.conditional import ETag, Precondition, Tagged, accepted, decimal, ensure_matches, missing_or_stale
from todo_api.lists import positions
from todo_api.lists.repository import (
    SORTS,
    DuplicateNameError,
    ListPageRow,
    ListRecord,
    ListRepository,
    ListState,
)
from todo_api.lists.schemas import ListCreate, ListQuery, ListRead, ListUpdate
from todo_api.pagination import Page, decode_cursor, encode_cursor, query_binding
from todo_api.sealed import Sealer
from todo_api.users import service as users

DUPLICATE_NAME = "A list with this name already exists"


class ListETag(ETag[ListState]):
    """`"<version>.<todo_count>.<open_count>"`: a list's representation includes its counts, so
    completing a todo in it changes its ETag too."""

    def opaque(self, version: ListState) -> str:
        return "{}.{}.{}".format(*version)

    def parse(self, opaque: str) -> ListState | None:
        numbers = [decimal(part) for part in opaque.split(".")]
        match numbers:
            case [int(version), int(todo_count), int(open_count)]:
                return ListState(version, todo_count, open_count)
        return None


ETAG = ListETag()


def _read(record: ListRecord | ListPageRow) -> ListRead:
    return ListRead.model_validate(record, from_attributes=True)


def _tagged(record: ListRecord) -> Tagged[ListRead]:
    return ETAG.tagged(_read(record), record.state)


def _get(repository: ListRepository, list_id: uuid.UUID) -> ListRecord:
    record = repository.get(list_id)
    if record is None:
        raise NotFound
    return record


def create_list(session: Session, user_id: uuid.UUID, data: ListCreate, limit: int) -> Tagged[ListRead]:
    """Create a list; at most `limit` per user (0: unlimited), checked in the same statement."""
    users.lock_account(session, user_id)  # new lists go last: read the last position under the lock
    try:
        created = ListRepository(session, user_id).create(data.name, limit, positions.last_key(session, user_id))
    except DuplicateNameError:
        raise DuplicateName(DUPLICATE_NAME) from None
    if created is None:
        users.require_account(session, user_id)
        raise QuotaExceeded(f"List limit reached: at most {limit} lists per user")
    return _tagged(created)


def get_list(session: Session, user_id: uuid.UUID, list_id: uuid.UUID) -> Tagged[ListRead]:
    return _tagged(_get(ListRepository(session, user_id), list_id))


def update_list(
    session: Session,
    user_id: uuid.UUID,
    list_id: uuid.UUID,
    data: ListCreate | ListUpdate,
    precondition: Precondition[ListState] | None,
) -> Tagged[ListRead]:
    """PUT (ListCreate: every field) and PATCH (ListUpdate: the fields sent), checked and written
    in one statement."""
    changes = data.changes() if isinstance(data, ListUpdate) else data.model_dump()
    repository = ListRepository(session, user_id)
    if "name" not in changes:
        current = _get(repository, list_id)
        ensure_matches(precondition, current.state)
        return _tagged(current)
    try:
        record = repository.update(list_id, changes["name"], accepted(precondition))
    except DuplicateNameError:
        raise DuplicateName(DUPLICATE_NAME) from None
    if record is None:
        missing_or_stale(repository.get(list_id))
    return _tagged(record)


def delete_list(
    session: Session, user_id: uuid.UUID, list_id: uuid.UUID, precondition: Precondition[ListState] | None
) -> None:
    """Move the list and its todos to the trash: the user's write turn, then its todos' rows, then
    the list's (the order a todo write takes them in: see `users.serialize_writes`)."""
    users.serialize_writes(session, user_id)
    repository = ListRepository(session, user_id)
    if not repository.delete(list_id, accepted(precondition)):
        missing_or_stale(repository.get(list_id))


def is_live(session: Session, user_id: uuid.UUID, list_id: uuid.UUID) -> bool:
    """Whether a todo may be put in `list_id`: one of the user's lists, not in the trash (the caller
    holds the user's write turn, so it stays so)."""
    return ListRepository(session, user_id).is_live(list_id)


def list_lists(session: Session, user_id: uuid.UUID, query: ListQuery, cursors: Sealer) -> Page[ListRead]:
    spec = SORTS[query.sort]
    binding = query_binding(user_id, [query.sort])
    after = decode_cursor(cursors, query.cursor, spec, binding) if query.cursor else None
    rows = ListRepository(session, user_id).page(spec, after, query.limit + 1)
    items = [_read(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(cursors, spec, last.sort_value, last.id, binding)
    return Page[ListRead](items=items, next_cursor=next_cursor)
