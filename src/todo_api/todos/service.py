"""Todo rules: ownership, list references, completion time, filtering and keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

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
from todo_api.sealed import Sealer
from todo_api.todos import planned, tree
from todo_api.todos.pages import SORTS, TodoFilters
from todo_api.todos.placement import parent_not_found
from todo_api.todos.planner_fields import stored_reminders
from todo_api.todos.repository import (
    ListReferenceError,
    ParentReferenceError,
    PlannerValues,
    TodoRecord,
    TodoRepository,
)
from todo_api.todos.schemas import (
    PriorityRank,
    TodoCreate,
    TodoQuery,
    TodoRead,
    TodoSort,
    TodoUpdate,
    tag_key,
    todo_document,
)
from todo_api.users import service as users

LIST_ID_LOC = ("body", "list_id")
ETAG = RowVersionETag()  # a todo's ETag is its row version


def _tagged(record: TodoRecord) -> Tagged[TodoRead]:
    return ETAG.tagged(TodoRead.model_validate(record), record.version)


def _stored(fields: dict[str, Any]) -> PlannerValues:
    """API field values → column values (priority as its rank, tags with their keys, reminders as JSON)."""
    values: PlannerValues = {**fields}  # type: ignore[typeddict-item]  # the schemas' fields are its keys
    if "priority" in fields:
        values["priority"] = PriorityRank.of(fields["priority"]).value
    if "tags" in fields:
        values["tag_keys"] = [tag_key(tag) for tag in fields["tags"]]
    if "reminders" in fields:
        values["reminders"] = stored_reminders(fields["reminders"])
    return values


def _placed_fields(data: TodoCreate) -> dict[str, Any]:
    """A body's fields; a `list_id` left out next to a `parent_id` means "the parent's list"."""
    fields = data.model_dump()
    if data.parent_id is not None and "list_id" not in data.model_fields_set:
        del fields["list_id"]
    return fields


def list_not_found(list_id: object) -> InvalidInput:
    return InvalidInput(LIST_ID_LOC, "List not found", str(list_id))


def _require_live_list(session: Session, user_id: uuid.UUID, list_id: uuid.UUID | None) -> None:
    """A list in the trash takes no todos (422, like a missing list; the composite foreign key
    refuses any other user's list). Checked while holding the user's write turn, which trashing a
    list takes too: the answer holds until this transaction ends."""
    if list_id is not None and not lists.is_live(session, user_id, list_id):
        raise list_not_found(list_id)


def create_todo(session: Session, user_id: uuid.UUID, data: TodoCreate, limit: int) -> Tagged[TodoRead]:
    """Create a todo; at most `limit` per user (0: unlimited), checked in the same statement, which
    runs under the user's write turn (`planned.prepare_create`). A `list_id` that is not one of the
    user's live lists is refused (422, like a missing list): another user's by the foreign key, a
    trashed one by the same statement (which then inserts nothing; the reason is found after)."""
    values = planned.prepare_create(session, user_id, _stored(_placed_fields(data)))
    try:
        created = TodoRepository(session, user_id).create(values, limit)
    except ListReferenceError:
        raise list_not_found(data.list_id) from None
    except ParentReferenceError:
        raise parent_not_found(data.parent_id) from None
    if created is None:
        users.require_account(session, user_id)
        _require_live_list(session, user_id, values.get("list_id"))
        raise QuotaExceeded(f"Todo limit reached: at most {limit} todos per user")
    return _tagged(planned.finish_create(session, user_id, created, data.completed))


def _get(repository: TodoRepository, todo_id: uuid.UUID) -> TodoRecord:
    todo = repository.get(todo_id)
    if todo is None:
        raise NotFound
    return todo


def get_todo(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID) -> Tagged[TodoRead]:
    return _tagged(_get(TodoRepository(session, user_id), todo_id))


def _update(
    session: Session,
    user_id: uuid.UUID,
    todo_id: uuid.UUID,
    fields: dict[str, Any],
    precondition: Precondition[int] | None,
) -> Tagged[TodoRead]:
    """One UPDATE … WHERE id, owner[, version] RETURNING: the check and the write are atomic."""
    if "list_id" in fields:  # a move locks two lists: see users.serialize_writes
        users.serialize_writes(session, user_id)
    repository = TodoRepository(session, user_id)
    if not fields:
        current = _get(repository, todo_id)
        ensure_matches(precondition, current.version)
        return _tagged(current)
    _require_live_list(session, user_id, fields.get("list_id"))
    try:
        if fields.keys() & planned.FIELDS:
            return _tagged(planned.update(session, user_id, todo_id, _stored(fields), precondition))
        todo = repository.update(todo_id, _stored(fields), accepted(precondition))
    except ListReferenceError:
        raise list_not_found(fields.get("list_id")) from None
    except ParentReferenceError:
        raise parent_not_found(fields.get("parent_id")) from None
    if todo is None:
        missing_or_stale(repository.get(todo_id))
    return _tagged(todo)


def replace_todo(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, data: TodoCreate, precondition: Precondition[int] | None
) -> Tagged[TodoRead]:
    """PUT: every field is set; fields the client left out take their defaults."""
    return _update(session, user_id, todo_id, _placed_fields(data), precondition)


def update_todo(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, data: TodoUpdate, precondition: Precondition[int] | None
) -> Tagged[TodoRead]:
    """PATCH: only the fields sent change."""
    return _update(session, user_id, todo_id, data.changes(), precondition)


def delete_todo(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, precondition: Precondition[int] | None
) -> None:
    """Move the todo to the trash (`todo_api.trash`), its subtasks with it."""
    users.serialize_writes(session, user_id)
    repository = TodoRepository(session, user_id)
    trashed = repository.delete(todo_id, accepted(precondition))
    if trashed is None:
        missing_or_stale(repository.get(todo_id))
    elif trashed.has_children:
        tree.trash_descendants(session, user_id, todo_id, trashed.deleted_at)


def _filters(query: TodoQuery) -> TodoFilters:
    return TodoFilters(
        completed=query.completed,
        in_no_list=query.list_id == "none",
        list_id=query.list_id if isinstance(query.list_id, uuid.UUID) else None,
        priority=None if query.priority is None else PriorityRank.of(query.priority).value,
        tag_keys=tuple(sorted({tag_key(tag) for tag in query.tag})),
        due_before=query.due_before,
        due_after=query.due_after,
        text=query.q or None,
        parent_id=query.parent_id if isinstance(query.parent_id, uuid.UUID) else None,
        top_level=query.parent_id == "none",
        completed_after=query.completed_after,
        completed_before=query.completed_before,
    )


def _binding(user_id: uuid.UUID, query: TodoQuery) -> str:
    tags = sorted({tag_key(tag) for tag in query.tag})
    filters = query.model_dump(exclude={"limit", "cursor", "tag"}, mode="json")
    return query_binding(user_id, [sorted(filters.items()), tags])


def _one_group(query: TodoQuery) -> TodoQuery:
    """`sort=position` orders one sibling group: the children of `parent_id`, else the top-level
    todos of `list_id`, else of no list (the inbox)."""
    if query.sort != TodoSort.POSITION or isinstance(query.parent_id, uuid.UUID):
        return query
    return query.model_copy(update={"parent_id": "none", "list_id": query.list_id or "none"})


def list_todos(session: Session, user_id: uuid.UUID, query: TodoQuery, cursors: Sealer) -> DocumentPage:
    query = _one_group(query)
    spec = SORTS[query.sort]
    binding = _binding(user_id, query)
    after = decode_cursor(cursors, query.cursor, spec, binding) if query.cursor else None
    rows = TodoRepository(session, user_id).page(_filters(query), spec, after, query.limit + 1)
    items = [todo_document(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(cursors, spec, last.sort_value, last.id, binding)
    return DocumentPage(items, next_cursor)
