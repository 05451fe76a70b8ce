"""Manual order of todos: position keys within a sibling group (same owner, list and parent).

Keys come from `todo_api.planner.ordering` (fractional keys, byte order = order, `COLLATE "C"`).
A new todo goes last; a move writes the moved todo's key only, between its new neighbours. When
that key would grow past `MAX_KEY_LENGTH` (after hundreds of moves into one gap), the whole group
is renumbered with short keys in ONE statement (array binds: `keys[array_position(ids, id)]`),
which the DEFERRABLE unique constraint checks at the statement's end, not row by row.

Callers hold the owner's account lock (`users.service.lock_account`): the neighbours read here stay
the neighbours until the write. Every statement is on the unique index (user_id, list_id,
parent_id, position), or on (parent_id, position) for a parent's children.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, Uuid, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import Grouping
from sqlmodel import Session, col, func, select, update

from todo_api.errors import AccountGone
from todo_api.models import Todo, User
from todo_api.models.base import sql_type
from todo_api.models.scoping import OWNER, live_todos, owned_todos, the_owner
from todo_api.planner.ordering import key_between, needs_rebalance, rebalanced

SHAPES = ("child", "list", "none")
_POSITION = col(Todo.position)
_KEY = sql_type(Todo.position)
_GROUPS: dict[str, ColumnElement[bool]] = {
    "child": col(Todo.parent_id) == bindparam("group_parent", type_=Uuid()),
    "list": (col(Todo.list_id) == bindparam("group_list", type_=Uuid())) & col(Todo.parent_id).is_(None),
    "none": col(Todo.list_id).is_(None) & col(Todo.parent_id).is_(None),
}


@dataclass(frozen=True, slots=True)
class Group:
    """A sibling group: the children of `parent_id`, or the top-level todos of `list_id` (None: no list)."""

    list_id: uuid.UUID | None
    parent_id: uuid.UUID | None

    @property
    def shape(self) -> str:
        return "child" if self.parent_id is not None else "list" if self.list_id is not None else "none"

    def params(self, user_id: uuid.UUID) -> dict[str, Any]:
        return {OWNER: user_id, "group_parent": self.parent_id, "group_list": self.list_id}


def _in(shape: str) -> list[ColumnElement[bool]]:
    return [owned_todos(), _GROUPS[shape]]


def in_order(shape: str) -> list[Any]:
    """The group's order as the index has it. `IS NULL` does not make a column constant for the
    planner (only `=` does), so top-level groups name (list_id, parent_id) in the order too: then
    the unique index (user_id, list_id, parent_id, position) serves it, and nothing is sorted."""
    return [_POSITION] if shape == "child" else [col(Todo.list_id), col(Todo.parent_id), _POSITION]


def _backwards(shape: str) -> list[Any]:
    return [column.desc() for column in in_order(shape)]


_LAST = {shape: select(_POSITION).where(*_in(shape)).order_by(*_backwards(shape)).limit(1) for shape in SHAPES}
# The user's write turn (the row lock of `users.repository.lock_account`) and the group's last key.
_IN_TURN_LAST = {
    shape: select(col(User.id), _LAST[shape].scalar_subquery())
    .where(the_owner())
    .with_for_update(key_share=True, of=User)
    for shape in SHAPES
}
# Keys are read among all of a group's rows (trashed ones keep theirs: a restore needs no new key),
# but a todo is only ever placed after a live one.
_OF = {
    shape: select(_POSITION).where(*_in(shape), live_todos(), col(Todo.id) == bindparam("after")) for shape in SHAPES
}
_NOT_SELF = col(Todo.id) != bindparam("moved", type_=Uuid())
_FIRST = {
    shape: select(_POSITION).where(*_in(shape), _NOT_SELF).order_by(*in_order(shape)).limit(1) for shape in SHAPES
}
_NEXT = {
    shape: select(_POSITION)
    .where(*_in(shape), _NOT_SELF, bindparam("before", type_=_KEY) < _POSITION)
    .order_by(*in_order(shape))
    .limit(1)
    for shape in SHAPES
}
_IDS = {shape: select(col(Todo.id)).where(*_in(shape)).order_by(*in_order(shape)) for shape in SHAPES}
_ID_ARRAY = bindparam("ids", type_=ARRAY(Uuid()))
# Parenthesised: `(:keys::TEXT[])[i]` (a subscript right after a cast would not parse).
_KEY_ARRAY = Grouping(bindparam("keys", type_=ARRAY(Text())))
REBALANCE = (
    update(Todo)
    .where(owned_todos(), col(Todo.id) == any_(_ID_ARRAY))
    .values(position=_KEY_ARRAY[func.array_position(_ID_ARRAY, col(Todo.id))])
    .execution_options(synchronize_session=False)
)


class AfterNotInGroup(Exception):
    """`after_id` is not a todo of the target sibling group (or not the user's)."""


def last_key(session: Session, user_id: uuid.UUID, group: Group) -> str:
    """The key that puts a todo after every other of the group (new todos, a change of group)."""
    last = session.exec(_LAST[group.shape], params=group.params(user_id)).first()
    return key_between(last, None)


def last_key_in_turn(session: Session, user_id: uuid.UUID, group: Group) -> str:
    """Take the user's write turn (`AccountGone` if the account no longer exists) and return the key
    that puts a new todo last in `group`, in ONE statement.

    The read's snapshot is the statement's, which may predate the lock: a create of the same user
    that held the turn and committed meanwhile is not seen. Keys are deterministic, so such a read
    yields exactly the key that create took, and the INSERT fails the group's unique constraint;
    `TodoRepository.create` turns that into `Rerun`, and the unit of work's second run takes the turn
    and reads in two statements (`last_key` after `users.lock_account`)."""
    row = session.exec(_IN_TURN_LAST[group.shape], params=group.params(user_id)).first()
    if row is None:
        raise AccountGone
    return key_between(row[1], None)


def key_after(
    session: Session, user_id: uuid.UUID, group: Group, moved: uuid.UUID, after: uuid.UUID | None, *, same_group: bool
) -> str:
    """The key that puts `moved` right after `after` (None: first) in `group`; renumbers the group
    first (rarely) when that key would be too long."""
    params = group.params(user_id) | {"moved": moved}
    before: str | None = None
    if after is not None:
        before = session.exec(_OF[group.shape], params=params | {"after": after}).first()
        if before is None or after == moved:
            raise AfterNotInGroup
        following = session.exec(_NEXT[group.shape], params=params | {"before": before}).first()
    else:
        following = session.exec(_FIRST[group.shape], params=params).first()
    key = key_between(before, following)
    if needs_rebalance(key):
        return _rebalance(session, user_id, group, moved, after, same_group=same_group)
    return key


def _rebalance(
    session: Session, user_id: uuid.UUID, group: Group, moved: uuid.UUID, after: uuid.UUID | None, *, same_group: bool
) -> str:
    """Short, evenly spaced keys for the whole group with `moved` in its new place; `moved`'s key.
    `moved` is renumbered with the group only if it is in it (else its old group keeps its key
    until the caller moves it)."""
    order = [todo_id for todo_id in session.exec(_IDS[group.shape], params=group.params(user_id)) if todo_id != moved]
    slot = 0 if after is None else order.index(after) + 1
    order.insert(slot, moved)
    keys = rebalanced(len(order))
    pairs = [(todo_id, key) for todo_id, key in zip(order, keys, strict=True) if same_group or todo_id != moved]
    params = {OWNER: user_id, "ids": [todo_id for todo_id, _ in pairs], "keys": [key for _, key in pairs]}
    session.exec(REBALANCE, params=params)
    return keys[slot]
