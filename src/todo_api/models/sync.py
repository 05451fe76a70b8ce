"""What sync reads besides the resources: tombstones of purged rows and each user's horizon.

`change_xid` columns hold PostgreSQL `xid8` values (64-bit transaction ids, never wrapping): the
transaction that last wrote a row, stamped by a trigger (migration 0005). Python sees them as ints.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Index, Text, cast
from sqlalchemy.types import TypeDecorator, UserDefinedType
from sqlmodel import Field, SQLModel

from todo_api.models.base import timestamp


class _Xid8(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "XID8"


class Xid8(TypeDecorator[int]):
    """`xid8` as a Python int. The driver does not know the type: values travel as text, and a
    bound value is cast to xid8 in SQL (so comparisons and row comparisons use xid8's order)."""

    impl = _Xid8
    cache_ok = True

    def bind_expression(self, bindvalue: BindParameter[Any]) -> ColumnElement[Any]:
        return cast(cast(bindvalue, Text), _Xid8())

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        return None if value is None else str(int(value))

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)


XID8 = Xid8()


def change_xid() -> int:
    """The writing transaction's id, set by the database (default and BEFORE trigger), never here."""
    return Field(default=None, sa_type=XID8, sa_column_kwargs={"nullable": False})  # type: ignore[no-any-return]


class SyncTombstone(SQLModel, table=True):
    """A purged (hard-deleted) todo or list, written by a trigger on DELETE, so incremental syncs
    still report it; kept TRASH_RETENTION_DAYS, then forgotten (its user's horizon moves)."""

    __tablename__ = "sync_tombstones"
    __table_args__ = (
        Index("ix_sync_tombstones_user_id_change_xid_id", "user_id", "change_xid", "id"),
        Index("ix_sync_tombstones_purged_at", "purged_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", nullable=False)
    kind: str = Field(sa_type=Text)
    change_xid: int = change_xid()
    purged_at: datetime = timestamp()


class SyncHorizon(SQLModel, table=True):
    """Per user, the newest `change_xid` among forgotten tombstones: a sync token from before it
    could miss a deletion, so it is refused (410)."""

    __tablename__ = "sync_horizons"

    user_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    purged_xid: int = Field(sa_type=XID8)
