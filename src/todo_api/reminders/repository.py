"""`reminder_fires`: the instants at which a todo's reminders fire, derived data kept in step with
the todo in the same unit of work (see `reminders.service.refresh`). Scoped by `owned_reminder_fires()`
and `owned_todos()`; the window is a range scan of (user_id, fires_at, todo_id).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Uuid, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, delete, func, insert

from todo_api.models import ReminderFire, Todo
from todo_api.models.scoping import OWNER, live_todos, owned_reminder_fires, owned_todos
from todo_api.pagination import TIMESTAMP, Position, by_time, page_params, select_columns

_IDS = bindparam("todo_ids", type_=ARRAY(Uuid()))


class TodoReminders(NamedTuple):
    id: uuid.UUID
    reminders: list[dict[str, str]]
    due_at: datetime | None
    completed: bool


class FiringRow(NamedTuple):
    fires_at: datetime
    todo_id: uuid.UUID
    title: str
    sort_value: datetime


BY_TIME = by_time("fires_at", col(ReminderFire.fires_at), col(ReminderFire.todo_id))
_WINDOW = [
    col(ReminderFire.fires_at) >= bindparam("start", type_=TIMESTAMP),
    col(ReminderFire.fires_at) < bindparam("end", type_=TIMESTAMP),
]
# A trashed todo keeps its firing instants (a restore brings them back as they were) but fires none.
_OWNED = owned_reminder_fires() & live_todos() & (col(Todo.id) == col(ReminderFire.todo_id))
_COLUMNS = [col(ReminderFire.fires_at), col(ReminderFire.todo_id), col(Todo.title)]
_PAGES = {after: statement.where(*_WINDOW) for after, statement in BY_TIME.pages(_COLUMNS, _OWNED).items()}
_SOURCES = select_columns(*(col(getattr(Todo, name)) for name in TodoReminders._fields)).where(
    owned_todos(), col(Todo.id) == any_(_IDS)
)
_CLEAR = (
    delete(ReminderFire)
    .where(owned_reminder_fires(), col(ReminderFire.todo_id) == any_(_IDS))
    .execution_options(synchronize_session=False)
)
_ADD = (
    insert(ReminderFire)
    .from_select(
        [col(ReminderFire.todo_id), col(ReminderFire.user_id), col(ReminderFire.fires_at)],
        select_columns(
            func.unnest(_IDS),
            bindparam("user_id", type_=Uuid()),
            func.unnest(bindparam("times", type_=ARRAY(TIMESTAMP))),
        ),
    )
    .execution_options(dml_strategy="raw")
)  # bind parameters feed the SELECT, not VALUES


def sources(session: Session, user_id: uuid.UUID, todo_ids: Sequence[uuid.UUID]) -> list[TodoReminders]:
    rows = session.exec(_SOURCES, params={OWNER: user_id, "todo_ids": list(todo_ids)})
    return [TodoReminders._make(row) for row in rows]


def replace(
    session: Session, user_id: uuid.UUID, todo_ids: Sequence[uuid.UUID], fires: Sequence[tuple[uuid.UUID, datetime]]
) -> None:
    """The todos' firing instants become exactly `fires` (todo id, instant)."""
    session.exec(_CLEAR, params={OWNER: user_id, "todo_ids": list(todo_ids)})
    if fires:
        params = {"user_id": user_id, "todo_ids": [todo for todo, _ in fires], "times": [at for _, at in fires]}
        session.exec(_ADD, params=params)


def window(
    session: Session, user_id: uuid.UUID, start: datetime, end: datetime, after: Position | None, limit: int
) -> list[FiringRow]:
    params: dict[str, Any] = {OWNER: user_id, "start": start, "end": end, **page_params(after, limit)}
    return [FiringRow._make(row) for row in session.exec(_PAGES[after is not None], params=params)]
