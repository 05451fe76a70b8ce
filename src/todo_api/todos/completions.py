"""Completion history: one `todo_completions` row per completion of a todo.

An ordinary todo has one while it is completed (reopening it deletes the row of the completion it
undoes); a recurring todo gets one per occurrence completed, with the occurrence's `due_at`.
Completing a parent completes its open subtasks: each gets its row too. Rows go with their todo
(ON DELETE CASCADE). `GET /api/todos/{todo_id}/completions` pages them newest first on the index
(todo_id, completed_at, id).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Uuid, bindparam, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, delete, func, insert
from sqlmodel.sql.expression import Select

from todo_api.errors import NotFound
from todo_api.models import TodoCompletion
from todo_api.models.scoping import OWNER, owned_completions
from todo_api.pagination import (
    TIMESTAMP,
    DocumentPage,
    by_time,
    decode_cursor,
    encode_cursor,
    page_params,
    query_binding,
    select_columns,
)
from todo_api.sealed import Sealer
from todo_api.todos.planner_fields import CompletionQuery
from todo_api.todos.repository import PlannerValues, TodoRecord, TodoRepository, plain_completion

NEWEST_FIRST = by_time("-completed_at", col(TodoCompletion.completed_at), col(TodoCompletion.id))
_OF_TODO = col(TodoCompletion.todo_id) == bindparam("todo", type_=Uuid())
_PAGES = {
    after: statement.where(_OF_TODO)
    for after, statement in NEWEST_FIRST.pages(
        [col(TodoCompletion.completed_at), col(TodoCompletion.due_at), col(TodoCompletion.id)], owned_completions()
    ).items()
}
# Rows for many todos at once (a parent and its subtasks): arrays, unnested in step.
_RECORD = (
    insert(TodoCompletion)
    .from_select(
        [col(TodoCompletion.id), col(TodoCompletion.user_id), col(TodoCompletion.todo_id), col(TodoCompletion.due_at)],
        select_columns(
            func.gen_random_uuid(),
            bindparam("user_id", type_=Uuid()),
            func.unnest(bindparam("todo_ids", type_=ARRAY(Uuid()))),
            func.unnest(bindparam("due_ats", type_=ARRAY(TIMESTAMP))),
        ),
    )
    .execution_options(dml_strategy="raw")
)  # bind parameters feed the SELECT, not VALUES
_UNDO = (
    delete(TodoCompletion)
    .where(
        owned_completions(),
        _OF_TODO,
        col(TodoCompletion.completed_at) == bindparam("completed_at", type_=TIMESTAMP),
    )
    .execution_options(synchronize_session=False)
)


_HISTORY_COLUMNS = [
    col(TodoCompletion.id),
    col(TodoCompletion.user_id),
    col(TodoCompletion.todo_id),
    col(TodoCompletion.due_at),
]


@functools.lru_cache(maxsize=128)
def _check_off(fields: frozenset[str], conditional: bool) -> Select[*tuple[Any, ...]]:
    """`repository.plain_completion` and its history in one statement: data-modifying CTEs record
    the completion when the UPDATE completes the todo, or delete the one it undoes when it reopens
    it (what `record` and `undo` do, a round trip less). PostgreSQL runs each CTE once, whether
    or not the outer SELECT reads it."""
    changed = plain_completion(fields, conditional).cte("changed")
    todo = changed.columns
    # The owner's id under its scoping name: an execution parameter named like a column of `todos`
    # (`user_id`) would join the UPDATE's SET clause.
    completes = select_columns(func.gen_random_uuid(), bindparam(OWNER, type_=Uuid()), todo["id"], todo["due_at"])
    recorded = (
        insert(TodoCompletion)
        .from_select(_HISTORY_COLUMNS, completes.where(todo["completed"], ~todo["was_completed"]))
        .execution_options(dml_strategy="raw")
        .cte("recorded")
    )
    reopens = select_columns(todo["id"], todo["was_completed_at"]).where(todo["was_completed"], ~todo["completed"])
    undone = (
        delete(TodoCompletion)
        .where(owned_completions(), tuple_(col(TodoCompletion.todo_id), col(TodoCompletion.completed_at)).in_(reopens))
        .execution_options(synchronize_session=False)
        .cte("undone")
    )
    return Select(changed).add_cte(recorded, undone)


def check_off(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, values: PlannerValues, versions: Iterable[int] | None
) -> TodoRecord | None:
    """Complete or reopen a plain todo with its history, in one statement. None: not found, not in
    `versions`, or not plain (the caller takes the general path)."""
    params = {f"new_{name}": value for name, value in values.items()}
    params |= {OWNER: user_id, "target": todo_id}
    if versions is not None:
        params["versions"] = sorted(versions)
    row = session.exec(_check_off(frozenset(values), versions is not None), params=params).first()
    return None if row is None else TodoRecord._make(row[:-2])


def record(session: Session, user_id: uuid.UUID, completed: Sequence[tuple[uuid.UUID, datetime | None]]) -> None:
    """A completion now for each (todo id, the due date it completes)."""
    if completed:
        params = {"user_id": user_id, "todo_ids": [todo for todo, _ in completed], "due_ats": [d for _, d in completed]}
        session.exec(_RECORD, params=params)


def undo(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, completed_at: datetime | None) -> None:
    """Reopened: forget the completion it undoes (the one at the todo's completion time)."""
    if completed_at is not None:
        session.exec(_UNDO, params={OWNER: user_id, "todo": todo_id, "completed_at": completed_at})


def list_completions(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, query: CompletionQuery, cursors: Sealer
) -> DocumentPage:
    """A todo's completions, newest first (404 unless the todo is the user's)."""
    if TodoRepository(session, user_id).get(todo_id) is None:
        raise NotFound
    binding = query_binding(user_id, [str(todo_id)])
    after = decode_cursor(cursors, query.cursor, NEWEST_FIRST, binding) if query.cursor else None
    params: dict[str, Any] = {OWNER: user_id, "todo": todo_id, **page_params(after, query.limit + 1)}
    rows = list(session.exec(_PAGES[after is not None], params=params))
    items = [{"completed_at": row[0], "due_at": row[1]} for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(cursors, NEWEST_FIRST, last[3], last[2], binding)
    return DocumentPage(items, next_cursor)
