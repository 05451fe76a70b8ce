from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel, col, func

from todo_api.models.base import timestamp, timestamp_literal, uuid_pk, version_column
from todo_api.models.sync import change_xid

TEXT_LIST = ARRAY(Text, dimensions=1)
MAX_DEPTH = 3  # subtasks: depth 0 (top level) to 3, four levels in all


class Todo(SQLModel, table=True):
    __tablename__ = "todos"
    __table_args__ = (
        # list_id must name a list of the same user, even if application code had a bug.
        ForeignKeyConstraint(
            ["list_id", "user_id"],
            ["lists.id", "lists.user_id"],
            ondelete="CASCADE",
            name="fk_todos_list_id_user_id_lists",
        ),
        CheckConstraint("char_length(title) BETWEEN 1 AND 500", name="title_length"),
        CheckConstraint("char_length(description) <= 10000", name="description_length"),
        CheckConstraint("priority BETWEEN 0 AND 3", name="priority_range"),
        CheckConstraint("cardinality(tags) <= 20", name="tags_count"),
        CheckConstraint("completed = (completed_at IS NOT NULL)", name="completed_at_matches"),
        Index("ix_todos_tag_keys", "tag_keys", postgresql_using="gin"),
        Index("ix_todos_user_id_change_xid_id", "user_id", "change_xid", "id"),
        # Planner (migration 0006): subtasks, manual order, recurrence, reminders.
        UniqueConstraint("id", "user_id"),
        ForeignKeyConstraint(
            ["parent_id", "user_id"],
            ["todos.id", "todos.user_id"],
            ondelete="CASCADE",
            name="fk_todos_parent_id_user_id_todos",
        ),
        CheckConstraint("parent_id <> id", name="not_own_parent"),
        CheckConstraint(f"depth BETWEEN 0 AND {MAX_DEPTH}", name="depth_range"),
        CheckConstraint("position ~ '^[0-9A-Za-z]{2,64}$'", name="position_key"),
        CheckConstraint("char_length(recurrence) <= 500", name="recurrence_length"),
        CheckConstraint("char_length(time_zone) <= 64", name="time_zone_length"),
        CheckConstraint(
            "jsonb_typeof(reminders) = 'array' AND jsonb_array_length(reminders) <= 5", name="reminders_list"
        ),
        CheckConstraint(
            "recurrence IS NULL OR (due_at IS NOT NULL AND recurrence_local IS NOT NULL)", name="recurrence_due"
        ),
        # Siblings (same owner, list and parent) in order; DEFERRABLE in the migration (rebalances).
        UniqueConstraint("user_id", "list_id", "parent_id", "position", postgresql_nulls_not_distinct=True),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(sa_column_args=[ForeignKey("users.id", ondelete="CASCADE")], nullable=False)
    list_id: uuid.UUID | None = Field(default=None)
    title: str = Field(sa_type=Text)
    description: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    completed: bool = Field(default=False, sa_type=Boolean, sa_column_kwargs={"server_default": false()})
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    due_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    priority: int = Field(default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": "0"})
    # Tags as the user wrote them, and their lower-case keys for case-insensitive filtering.
    # One-dimensional (`dimensions=1`): SQLAlchemy then copies each array once when loading,
    # instead of inspecting its items for nesting (~1 µs per row; pages load 50).
    tags: list[str] = Field(default_factory=list, sa_column=Column(TEXT_LIST, nullable=False, server_default="{}"))
    tag_keys: list[str] = Field(default_factory=list, sa_column=Column(TEXT_LIST, nullable=False, server_default="{}"))
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    version: int = version_column()
    # The trash (migration 0005): set when deleted; `deleted_with_list` when its list took it along.
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    deleted_with_list: bool = Field(default=False, sa_type=Boolean, sa_column_kwargs={"server_default": false()})
    # Set on the subtasks a trashed todo took with it (migration 0006): restoring it brings them back.
    deleted_with_parent: bool = Field(default=False, sa_type=Boolean, sa_column_kwargs={"server_default": false()})
    change_xid: int = change_xid()  # the last writer's transaction (sync)
    parent_id: uuid.UUID | None = Field(default=None)
    depth: int = Field(default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": "0"})
    # Byte order (COLLATE "C") is the user's order among siblings: see todo_api.planner.ordering.
    position: str = Field(sa_type=Text(collation="C"))
    recurrence: str | None = Field(default=None, sa_type=Text)
    time_zone: str = Field(default="UTC", sa_type=Text, sa_column_kwargs={"server_default": "UTC"})
    # The series state (todo_api.planner.recurrence.Occurrence): wall-clock time and index.
    recurrence_local: datetime | None = Field(default=None, sa_type=DateTime(timezone=False))
    recurrence_index: int = Field(default=0, sa_type=Integer, sa_column_kwargs={"server_default": "0"})
    reminders: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )


# Sort keys that are not plain columns. The same expressions build the indexes below and the
# queries, so the planner always finds the index.
title_key = func.lower(col(Todo.title))
# `due_at` is nullable but sorts "nulls last" in both directions; keyset pagination needs a
# non-null key, so each direction sorts on due_at with nulls pushed to its own far end. The far
# ends are inlined constants (`literal_execute`), as in the index expressions: a bind parameter
# would not match them.
due_at_asc_key = func.coalesce(col(Todo.due_at), timestamp_literal("infinity"))
due_at_desc_key = func.coalesce(col(Todo.due_at), timestamp_literal("-infinity"))

# One index per sort order, each led by user_id (every query is scoped) and ended by id (ties
# broken by id, so keyset pages are exact); partial, on live rows: the trash costs listings nothing.
LIVE = col(Todo.deleted_at).is_(None)
TRASHED = col(Todo.deleted_at).is_not(None)
Index("ix_todos_user_id_created_at_id", col(Todo.user_id), col(Todo.created_at), col(Todo.id), postgresql_where=LIVE)
Index("ix_todos_user_id_updated_at_id", col(Todo.user_id), col(Todo.updated_at), col(Todo.id), postgresql_where=LIVE)
Index("ix_todos_user_id_priority_id", col(Todo.user_id), col(Todo.priority), col(Todo.id), postgresql_where=LIVE)
Index("ix_todos_list_id_completed", col(Todo.list_id), col(Todo.completed), col(Todo.user_id), postgresql_where=LIVE)
Index("ix_todos_user_id_lower_title_id", col(Todo.user_id), title_key, col(Todo.id), postgresql_where=LIVE)
Index("ix_todos_user_id_due_asc_id", col(Todo.user_id), due_at_asc_key, col(Todo.id), postgresql_where=LIVE)
Index("ix_todos_user_id_due_desc_id", col(Todo.user_id), due_at_desc_key, col(Todo.id), postgresql_where=LIVE)
Index("ix_todos_user_id_deleted_at_id", col(Todo.user_id), col(Todo.deleted_at), col(Todo.id), postgresql_where=TRASHED)
Index("ix_todos_deleted_at", col(Todo.deleted_at), postgresql_where=TRASHED)
# Children of a todo in order (subtree walks, the delete cascade, `parent_id=` pages), and completed
# todos by completion time (`completed_after`/`completed_before`, `sort=completed_at`).
Index(
    "ix_todos_parent_id_position",
    col(Todo.parent_id),
    col(Todo.position),
    postgresql_where=col(Todo.parent_id).is_not(None),
)
Index(
    "ix_todos_user_id_completed_at_id",
    col(Todo.user_id),
    col(Todo.completed_at),
    col(Todo.id),
    postgresql_where=col(Todo.completed_at).is_not(None),
)
