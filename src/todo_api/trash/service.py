"""Trash rules: DELETE moves todos and lists here (their own services do that); from here they are
restored (within the quotas, a todo only with its list), purged one by one or all at once, and
expired by housekeeping after TRASH_RETENTION_DAYS.

What a list takes with it: its live todos, marked `deleted_with_list`. They are not items of the
trash on their own; restoring the list brings them back. A todo deleted before its list stays an
item of its own, and restoring it while its list is in the trash is 409 (`list_in_trash`). A todo
likewise takes its live subtasks (every level, marked `deleted_with_parent`, stamped with its
deletion time) and brings them back; a subtask deleted on its own before its parent stays an item,
and restoring it while its parent is in the trash is 409 (`parent_in_trash`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from todo_api.errors import AccountGone, DuplicateName, ListInTrash, NotFound, ParentInTrash, QuotaExceeded
from todo_api.http.conditional import Tagged
from todo_api.lists import service as lists
from todo_api.lists.schemas import ListRead
from todo_api.pagination import DocumentPage, decode_cursor, encode_cursor, query_binding
from todo_api.sealed import Sealer
from todo_api.todos import service as todos
from todo_api.todos import tree
from todo_api.todos.schemas import TodoRead, todo_document
from todo_api.trash.repository import TODO_SPEC, DuplicateNameError, TrashRepository, expire
from todo_api.trash.schemas import ResourceKind, TrashQuery
from todo_api.users import service as users

_LIST_FIELDS = tuple(ListRead.model_fields)


def _list_document(row: Any) -> dict[str, Any]:
    return dict(zip(_LIST_FIELDS, row, strict=False))


def _item(kind: ResourceKind, row: Any) -> dict[str, Any]:
    resource = todo_document(row) if kind is ResourceKind.TODO else _list_document(row)
    return {"kind": kind.value, "id": row.id, "deleted_at": row.sort_value, "resource": resource}


def list_trash(session: Session, user_id: uuid.UUID, query: TrashQuery, cursors: Sealer) -> DocumentPage:
    """One page of the trash (todos and lists merged, newest deletion first)."""
    binding = query_binding(user_id, ["trash"])
    after = decode_cursor(cursors, query.cursor, TODO_SPEC, binding) if query.cursor else None
    todos_rows, lists_rows = TrashRepository(session, user_id).page(after, query.limit + 1)
    merged = sorted(
        [(row.sort_value, row.id, ResourceKind.TODO, row) for row in todos_rows]
        + [(row.sort_value, row.id, ResourceKind.LIST, row) for row in lists_rows],
        key=lambda entry: (entry[0], entry[1]),
        reverse=True,
    )
    page = merged[: query.limit]
    next_cursor = None
    if len(merged) > query.limit:
        deleted_at, last_id, _, _ = page[-1]
        next_cursor = encode_cursor(cursors, TODO_SPEC, deleted_at, last_id, binding)
    return DocumentPage([_item(kind, row) for _, _, kind, row in page], next_cursor)


def _quota(limit: int, current: int, adding: int, what: str) -> None:
    if limit and current + adding > limit:
        raise QuotaExceeded(f"{what} limit reached: at most {limit} {what.lower()}s per user; nothing was restored")


def restore(
    session: Session,
    user_id: uuid.UUID,
    resource_id: uuid.UUID,
    todo_limit: int,
    list_limit: int,
    kind: ResourceKind | None = None,
) -> Tagged[TodoRead] | Tagged[ListRead]:
    """Bring a todo or a list (with the todos it took) back — only of `kind`, if given — within
    the quotas, checked under the user row's lock like a create (which is the user's write turn)."""
    repository = TrashRepository(session, user_id)
    allowance = repository.allowance()
    if allowance is None:
        raise AccountGone
    todo = repository.trashed_todo(resource_id) if kind is not ResourceKind.LIST else None
    if todo is not None:
        if todo.list_trashed:
            raise ListInTrash
        if todo.parent_trashed:
            raise ParentInTrash
        subtasks = tree.trashed_with(session, user_id, resource_id, todo.deleted_at)
        _quota(todo_limit, allowance.todo_count, 1 + subtasks, "Todo")
        repository.restore_todo(resource_id)
        if subtasks:
            tree.restore_with(session, user_id, resource_id, todo.deleted_at)
        return todos.get_todo(session, user_id, resource_id)
    trashed = repository.trashed_list(resource_id) if kind is not ResourceKind.TODO else None
    if trashed is None:
        raise NotFound
    _quota(list_limit, allowance.list_count, 1, "List")
    _quota(todo_limit, allowance.todo_count, trashed.todos, "Todo")
    try:
        repository.restore_list(resource_id)
    except DuplicateNameError:
        raise DuplicateName(f"{lists.DUPLICATE_NAME}: rename that one, then restore this one") from None
    return lists.get_list(session, user_id, resource_id)


def purge(session: Session, user_id: uuid.UUID, resource_id: uuid.UUID) -> None:
    """Delete a trashed todo or list for good (a list with every todo in it)."""
    users.serialize_writes(session, user_id)
    if not TrashRepository(session, user_id).purge(resource_id):
        raise NotFound


def empty(session: Session, user_id: uuid.UUID) -> None:
    users.serialize_writes(session, user_id)
    TrashRepository(session, user_id).empty()


def expire_old(session: Session, keep: timedelta) -> None:
    """Housekeeping (every user's trash): purge what was trashed more than `keep` ago."""
    expire(session, keep)
