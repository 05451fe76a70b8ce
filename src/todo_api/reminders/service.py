"""Reminder rules: firing instants are derived from each todo's reminders, due date and state
(`todo_api.planner.reminders.fire_times`) and rewritten in the unit of work of every write that
changes them; the window lists them in firing order, keyset-paged."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from pydantic import TypeAdapter
from sqlmodel import Session

from todo_api.pagination import DocumentPage, decode_cursor, encode_cursor, query_binding
from todo_api.planner.reminders import Reminders, fire_times
from todo_api.reminders import repository
from todo_api.reminders.repository import BY_TIME
from todo_api.reminders.schemas import ReminderQuery
from todo_api.sealed import Sealer

REMINDERS = TypeAdapter(Reminders)


def refresh(session: Session, user_id: uuid.UUID, todo_ids: Iterable[uuid.UUID]) -> None:
    """Rewrite the firing instants of these todos (≤ 5 rows each) from their current rows."""
    ids = list(dict.fromkeys(todo_ids))
    if not ids:
        return
    fires = []
    for todo in repository.sources(session, user_id, ids):
        reminders = REMINDERS.validate_python(todo.reminders)
        fires += [(todo.id, at) for at in fire_times(reminders, todo.due_at, completed=todo.completed, deleted=False)]
    repository.replace(session, user_id, ids, fires)


def list_reminders(session: Session, user_id: uuid.UUID, query: ReminderQuery, cursors: Sealer) -> DocumentPage:
    binding = query_binding(user_id, [query.start.isoformat(), query.end.isoformat()])
    after = decode_cursor(cursors, query.cursor, BY_TIME, binding) if query.cursor else None
    rows = repository.window(session, user_id, query.start, query.end, after, query.limit + 1)
    items = [{"fires_at": row.fires_at, "todo_id": row.todo_id, "title": row.title} for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor(cursors, BY_TIME, last.sort_value, last.todo_id, binding)
    return DocumentPage(items, next_cursor)
