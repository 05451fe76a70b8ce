"""Planner tables: completion history and reminder firing times (migration 0006)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index
from sqlmodel import Field, SQLModel

from todo_api.models.base import timestamp, uuid_pk


class TodoCompletion(SQLModel, table=True):
    """One completion of a todo: one per occurrence of a recurring todo, one for an ordinary one
    (deleted again when it is reopened). `due_at` is the occurrence that was completed."""

    __tablename__ = "todo_completions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["todo_id", "user_id"],
            ["todos.id", "todos.user_id"],
            ondelete="CASCADE",
            name="fk_todo_completions_todo_id_user_id_todos",
        ),
        Index("ix_todo_completions_todo_id_completed_at_id", "todo_id", "completed_at", "id"),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(nullable=False)
    todo_id: uuid.UUID = Field(nullable=False)
    completed_at: datetime = timestamp()
    due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ReminderFire(SQLModel, table=True):
    """When one of a todo's reminders fires next: derived from the todo's `reminders`, `due_at` and
    state, rewritten by every write that changes them (an expression index cannot reach into the
    JSONB array, and relative reminders follow `due_at`)."""

    __tablename__ = "reminder_fires"
    __table_args__ = (
        ForeignKeyConstraint(
            ["todo_id", "user_id"],
            ["todos.id", "todos.user_id"],
            ondelete="CASCADE",
            name="fk_reminder_fires_todo_id_user_id_todos",
        ),
        Index("ix_reminder_fires_user_id_fires_at_todo_id", "user_id", "fires_at", "todo_id"),
    )

    todo_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(nullable=False)
    fires_at: datetime = Field(primary_key=True, sa_type=DateTime(timezone=True))
