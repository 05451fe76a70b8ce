"""Manual order of lists: `position` keys (see `todo_api.todos.positions`, the same scheme with one
group per user), on the unique index (user_id, position). Callers hold the account lock."""

from __future__ import annotations

import uuid

from sqlalchemy import Text, Uuid, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import Grouping
from sqlmodel import Session, col, func, select, update

from todo_api.models import TodoList
from todo_api.models.base import sql_type
from todo_api.models.scoping import OWNER, live_lists, owned_lists
from todo_api.planner.ordering import key_between, needs_rebalance, rebalanced

_POSITION = col(TodoList.position)
_NOT_SELF = col(TodoList.id) != bindparam("moved", type_=Uuid())
_LAST = select(_POSITION).where(owned_lists()).order_by(_POSITION.desc()).limit(1)
_OF = select(_POSITION).where(live_lists(), col(TodoList.id) == bindparam("after", type_=Uuid()))
_FIRST = select(_POSITION).where(owned_lists(), _NOT_SELF).order_by(_POSITION).limit(1)
_NEXT = (
    select(_POSITION)
    .where(owned_lists(), _NOT_SELF, bindparam("before", type_=sql_type(TodoList.position)) < _POSITION)
    .order_by(_POSITION)
    .limit(1)
)
_IDS = select(col(TodoList.id)).where(owned_lists()).order_by(_POSITION)
_ID_ARRAY = bindparam("ids", type_=ARRAY(Uuid()))
_KEY_ARRAY = Grouping(bindparam("keys", type_=ARRAY(Text())))  # `(:keys)[i]`: see todos.positions
REBALANCE = (
    update(TodoList)
    .where(owned_lists(), col(TodoList.id) == any_(_ID_ARRAY))
    .values(position=_KEY_ARRAY[func.array_position(_ID_ARRAY, col(TodoList.id))])
    .execution_options(synchronize_session=False)
)


class AfterNotFound(Exception):
    """`after_id` is not one of the user's lists (or is the moved list itself)."""


def last_key(session: Session, user_id: uuid.UUID) -> str:
    return key_between(session.exec(_LAST, params={OWNER: user_id}).first(), None)


def key_after(session: Session, user_id: uuid.UUID, moved: uuid.UUID, after: uuid.UUID | None) -> str:
    """The key that puts list `moved` right after `after` (None: first); renumbers all the user's
    lists first (rarely) when that key would be too long."""
    params = {OWNER: user_id, "moved": moved}
    before: str | None = None
    if after is not None:
        before = session.exec(_OF, params=params | {"after": after}).first()
        if before is None or after == moved:
            raise AfterNotFound
        following = session.exec(_NEXT, params=params | {"before": before}).first()
    else:
        following = session.exec(_FIRST, params=params).first()
    key = key_between(before, following)
    if not needs_rebalance(key):
        return key
    order = [list_id for list_id in session.exec(_IDS, params={OWNER: user_id}) if list_id != moved]
    slot = 0 if after is None else order.index(after) + 1
    order.insert(slot, moved)
    keys = rebalanced(len(order))
    session.exec(REBALANCE, params={OWNER: user_id, "ids": order, "keys": keys})
    return keys[slot]
