"""What sync reads, scoped to one owner: changed todos and lists (live or trashed) and tombstones
in (change_xid, id) order after a position, the snapshot's xmin and the user's horizon. Each
source is read on its `(user_id, change_xid, id)` index, one row comparison deep."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Interval, Uuid, bindparam
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, delete, func, select, tuple_

from todo_api.errors import AccountGone
from todo_api.lists.repository import ALL_TODOS, OPEN_TODOS
from todo_api.models import SyncHorizon, SyncTombstone, Todo, TodoList, User
from todo_api.models.scoping import OWNER, owned_horizon, owned_lists, owned_todos, owned_tombstones, the_owner
from todo_api.models.sync import XID8
from todo_api.pagination import select_columns
from todo_api.sync.token import Position
from todo_api.todos.repository import TodoRecord

_XMIN = select(func.pg_snapshot_xmin(func.pg_current_snapshot(), type_=XID8))
_LIMIT = bindparam("limit", type_=Integer)


def _after(model: Any) -> ColumnElement[bool]:
    position = tuple_(bindparam("after_xid", type_=XID8), bindparam("after_id", type_=Uuid()))
    return tuple_(col(model.change_xid), col(model.id)) > position


def _changes(model: Any, columns: list[Any], owned: ColumnElement[bool]) -> dict[bool, Any]:
    """Per round kind (full: live rows only), rows after the position in (change_xid, id) order."""
    statement = select_columns(*columns, col(model.deleted_at), col(model.change_xid)).where(owned, _after(model))
    statement = statement.order_by(col(model.change_xid), col(model.id)).limit(_LIMIT)
    return {full: statement.where(col(model.deleted_at).is_(None)) if full else statement for full in (False, True)}


TODO_FIELDS = [col(getattr(Todo, name)) for name in TodoRecord._fields if name != "version"]
LIST_FIELDS = [
    col(TodoList.id),
    col(TodoList.name),
    col(TodoList.created_at),
    col(TodoList.updated_at),
    ALL_TODOS.label("todo_count"),
    OPEN_TODOS.label("open_count"),
    col(TodoList.position),  # ListRead's field order
]
_TODOS = _changes(Todo, TODO_FIELDS, owned_todos())
_LISTS = _changes(TodoList, LIST_FIELDS, owned_lists())
_TOMBSTONES = (
    select(col(SyncTombstone.id), col(SyncTombstone.kind), col(SyncTombstone.change_xid))
    .where(owned_tombstones(), _after(SyncTombstone))
    .order_by(col(SyncTombstone.change_xid), col(SyncTombstone.id))
    .limit(_LIMIT)
)
# Through the user row: one row if the account exists (its horizon, or NULL), none if it does not.
_HORIZON = (
    select_columns(col(User.id), col(SyncHorizon.purged_xid)).outerjoin(SyncHorizon, owned_horizon()).where(the_owner())
)
# Housekeeping across all users: tombstones are kept as long as the trash, then the horizon of
# each user whose tombstones go moves past them (for users that still exist).
_FORGET = (
    delete(SyncTombstone)
    .where(col(SyncTombstone.purged_at) < func.now() - bindparam("keep", type_=Interval))
    .returning(col(SyncTombstone.user_id), col(SyncTombstone.change_xid))
    .execution_options(synchronize_session=False, all_users=True)
)
_NEW_HORIZON = postgresql.insert(SyncHorizon).from_select(
    [col(SyncHorizon.user_id), col(SyncHorizon.purged_xid)],
    select_columns(col(User.id), bindparam("purged_xid", type_=XID8)).where(the_owner()),
)
_MOVE_HORIZON = _NEW_HORIZON.on_conflict_do_update(
    index_elements=[col(SyncHorizon.user_id)],
    set_={"purged_xid": func.greatest(col(SyncHorizon.purged_xid), _NEW_HORIZON.excluded.purged_xid)},
).execution_options(all_users=True, dml_strategy="raw")


class SyncRepository:
    def __init__(self, session: Session, user_id: uuid.UUID) -> None:
        self.session = session
        self._owner = {OWNER: user_id}

    def snapshot_xmin(self) -> int:
        """The xmin of this statement's snapshot: every transaction below it has ended."""
        return int(self.session.exec(_XMIN).one())

    def _params(self, position: Position, rank: int, limit: int) -> dict[str, Any]:
        return {**self._owner, "after_xid": position.xid, "after_id": position.after_id(rank), "limit": limit}

    def lists(self, full: bool, position: Position, limit: int) -> list[Any]:
        return list(self.session.exec(_LISTS[full], params=self._params(position, 0, limit)))

    def todos(self, full: bool, position: Position, limit: int) -> list[Any]:
        return list(self.session.exec(_TODOS[full], params=self._params(position, 1, limit)))

    def tombstones(self, position: Position, limit: int) -> list[Any]:
        return list(self.session.exec(_TOMBSTONES, params=self._params(position, 2, limit)))

    def horizon(self) -> int | None:
        """The newest change_xid among this user's forgotten tombstones (None: none forgotten yet);
        `AccountGone` if the account no longer exists (a worker's cached id may be a deleted
        account's: see `auth.current.CurrentUser`)."""
        row = self.session.exec(_HORIZON, params=self._owner).first()
        if row is None:
            raise AccountGone
        purged_xid: int | None = row[1]
        return purged_xid


def forget_tombstones(session: Session, keep: timedelta) -> None:
    """Housekeeping: drop tombstones older than `keep`, moving each user's horizon past them."""
    forgotten = session.exec(_FORGET, params={"keep": keep}).all()
    newest: dict[uuid.UUID, int] = {}
    for user_id, xid in forgotten:
        newest[user_id] = max(newest.get(user_id, 0), int(xid))
    for user_id, xid in newest.items():  # a few users per round: one statement each
        session.exec(_MOVE_HORIZON, params={OWNER: user_id, "purged_xid": xid})
