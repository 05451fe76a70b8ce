from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col, func

from todo_api.models.base import timestamp, uuid_pk, version_column
from todo_api.models.sync import change_xid


class TodoList(SQLModel, table=True):
    """A user's named list of todos. Trashing a list trashes its todos; purging it deletes them."""

    __tablename__ = "lists"
    __table_args__ = (
        # The target of todos' composite foreign key: a todo can only point at its owner's list.
        UniqueConstraint("id", "user_id"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name_length"),
        Index("ix_lists_user_id_change_xid_id", "user_id", "change_xid", "id"),
        # The user's order of lists (DEFERRABLE in migration 0006: rebalances).
        CheckConstraint("position ~ '^[0-9A-Za-z]{2,64}$'", name="position_key"),
        UniqueConstraint("user_id", "position", postgresql_nulls_not_distinct=True),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(sa_column_args=[ForeignKey("users.id", ondelete="CASCADE")], nullable=False)
    name: str = Field(sa_type=Text)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()
    version: int = version_column()
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))  # in the trash since
    change_xid: int = change_xid()  # the last writer's transaction (sync)
    position: str = Field(sa_type=Text(collation="C"))


# Names are unique per user, case-insensitively. The index also serves `sort=name`: lower(name) is
# unique per user, so it orders a user's lists totally on its own.
# Among live lists: a list in the trash keeps its name free (restoring it into a taken name is 409).
name_key = func.lower(col(TodoList.name))
LIVE = col(TodoList.deleted_at).is_(None)
TRASHED = col(TodoList.deleted_at).is_not(None)
Index("uq_lists_user_id_lower_name", col(TodoList.user_id), name_key, unique=True, postgresql_where=LIVE)
Index(
    "ix_lists_user_id_created_at_id",
    col(TodoList.user_id),
    col(TodoList.created_at),
    col(TodoList.id),
    postgresql_where=LIVE,
)
Index(
    "ix_lists_user_id_deleted_at_id",
    col(TodoList.user_id),
    col(TodoList.deleted_at),
    col(TodoList.id),
    postgresql_where=TRASHED,
)
Index("ix_lists_deleted_at", col(TodoList.deleted_at), postgresql_where=TRASHED)
