"""Todo rules: ownership, list references, completion time, filtering and keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine import Connection

from todo_api.errors import InvalidInput, NotFound, QuotaExceeded
from todo_api.http.conditional import (
    Precondition,
    RowVersionETag,
    Tagged,
    accepted,
    ensure_matches,
    missing_or_stale,
)
from todo_api.lists import service as lists
from todo_api.pagination import DocumentPage, decode_cursor, encode_cursor, query_binding
from todo_api.quota import Quota
from todo_api.sealed import Sealer
from todo_api.todos.repository import SORTS, ListReferenceError, TodoRepository, like_pattern
from todo_api.todos.schemas import Priority, TodoCreate, TodoQuery, TodoRead, TodoUpdate, tag_key, todo_document

LIST_ID_LOC = ("body", "list_id")
ETAG = RowVersionETag()  # a todo's ETag is its row version


def _read(row: Row[Any]) -> TodoRead:
    return TodoRead.model_validate(row)


def _tagged(row: Row[Any]) -> Tagged[TodoRead]:
    return ETAG.tagged(_read(row), row.version)


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    """API field values → column values (priority as its rank, tags with their keys)."""
    values = dict(fields)
    if "priority" in values:
        values["priority"] = Priority.of(values["priority"]).value
    if "tags" in values:
        values["tag_keys"] = [tag_key(tag) for tag in values["tags"]]
    return values


def _check_list(db: Connection, user_id: uuid.UUID, list_id: uuid.UUID | None) -> None:
    if list_id is not None and not lists.is_owned(db, user_id, list_id):
        raise InvalidInput(LIST_ID_LOC, "List not found", str(list_id))


def create_todo(db: Connection, user_id: uuid.UUID, data: TodoCreate, quota: Quota) -> Tagged[TodoRead]:
    """Create a todo; at most `quota.limit` per user (0: unlimited)."""
    fields = data.model_dump()
    _check_list(db, user_id, fields["list_id"])
    repository = TodoRepository(db, user_id)
    if not quota.gauge.admits("todos", user_id, quota.limit, repository.count):
        raise QuotaExceeded(f"Todo limit reached: at most {quota.limit} todos per user")
    try:
        return _tagged(repository.create(_stored(fields)))
    except ListReferenceError:  # the list vanished between the check and the write
        raise InvalidInput(LIST_ID_LOC, "List not found", str(fields["list_id"])) from None


def _get(repository: TodoRepository, todo_id: uuid.UUID) -> Row[Any]:
    todo = repository.get(todo_id)
    if todo is None:
        raise NotFound
    return todo


def get_todo(db: Connection, user_id: uuid.UUID, todo_id: uuid.UUID) -> Tagged[TodoRead]:
    return _tagged(_get(TodoRepository(db, user_id), todo_id))


def _update(
    db: Connection,
    user_id: uuid.UUID,
    todo_id: uuid.UUID,
    fields: dict[str, Any],
    precondition: Precondition[int] | None,
) -> Tagged[TodoRead]:
    """One UPDATE … WHERE id, owner[, version] RETURNING: the check and the write are atomic."""
    repository = TodoRepository(db, user_id)
    if not fields:
        current = _get(repository, todo_id)
        ensure_matches(precondition, current.version)
        return _tagged(current)
    if "list_id" in fields:
        _check_list(db, user_id, fields["list_id"])
    try:
        todo = repository.update(todo_id, _stored(fields), accepted(precondition))
    except ListReferenceError:
        raise InvalidInput(LIST_ID_LOC, "List not found", str(fields.get("list_id"))) from None
    if todo is None:
        missing_or_stale(repository.get(todo_id))
    return _tagged(todo)


def replace_todo(
    db: Connection, user_id: uuid.UUID, todo_id: uuid.UUID, data: TodoCreate, precondition: Precondition[int] | None
) -> Tagged[TodoRead]:
    """PUT: every field is set; fields the client left out take their defaults."""
    return _update(db, user_id, todo_id, data.model_dump(), precondition)


def update_todo(
    db: Connection, user_id: uuid.UUID, todo_id: uuid.UUID, data: TodoUpdate, precondition: Precondition[int] | None
) -> Tagged[TodoRead]:
    """PATCH: only the fields sent change."""
    return _update(db, user_id, todo_id, data.changes(), precondition)


def delete_todo(db: Connection, user_id: uuid.UUID, todo_id: uuid.UUID, precondition: Precondition[int] | None) -> None:
    repository = TodoRepository(db, user_id)
    if not repository.delete(todo_id, accepted(precondition)):
        missing_or_stale(repository.get(todo_id))


def _filters(query: TodoQuery) -> dict[str, Any]:
    """The query's filters as the repository names them, with their values."""
    filters: dict[str, Any] = {}
    if query.completed is not None:
        filters["completed"] = query.completed
    if query.list_id == "none":
        filters["no_list"] = None
    elif query.list_id is not None:
        filters["list_id"] = query.list_id
    if query.priority is not None:
        filters["priority"] = Priority.of(query.priority).value
    if query.tag:
        filters["tag_keys"] = sorted({tag_key(tag) for tag in query.tag})
    if query.due_before is not None:
        filters["due_before"] = query.due_before
    if query.due_after is not None:
        filters["due_after"] = query.due_after
    if query.q:
        filters["q"] = like_pattern(query.q)
    return filters


def _binding(user_id: uuid.UUID, query: TodoQuery) -> str:
    tags = sorted({tag_key(tag) for tag in query.tag})
    filters = query.model_dump(exclude={"limit", "cursor", "tag"}, mode="json")
    return query_binding(user_id, [sorted(filters.items()), tags])


def list_todos(db: Connection, user_id: uuid.UUID, query: TodoQuery, cursors: Sealer) -> DocumentPage:
    spec = SORTS[query.sort]
    binding = _binding(user_id, query)
    after = decode_cursor(cursors, query.cursor, spec, binding) if query.cursor else None
    rows = TodoRepository(db, user_id).page(_filters(query), spec, after, query.limit + 1)
    items = [todo_document(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(cursors, spec, last.sort_value, last.id, binding)
    return DocumentPage(items, next_cursor)
