"""Subtasks: a todo's place in its tree, and statements over a whole subtree.

A todo's `parent_id` names a todo of the same user (a composite foreign key, ON DELETE CASCADE:
deleting a parent deletes its subtree) in the same list (kept here). `depth` is 0 for a top-level
todo and the parent's + 1 below it, at most `MAX_DEPTH` (four levels in all), so the depth check is
one row read, not a walk. Every statement starts from `owned_todos()`; subtrees are recursive CTEs
(`select(...).cte(recursive=True)`), bounded by `MAX_DEPTH` levels even if the data were not.

`subtree_ids()` is the statement of a subtree's ids (the todo and all below it): the delete
cascade needs none, but a trash (issue 14) marks exactly those rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, DateTime, Uuid, bindparam, literal
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate, Update
from sqlalchemy.sql.selectable import CTE
from sqlmodel import Session, col, exists, func, select, update

from todo_api.models import Todo
from todo_api.models.scoping import OWNER, live_todos, owned_todos
from todo_api.models.todo import MAX_DEPTH
from todo_api.pagination import select_columns

_NO_SYNC = {"synchronize_session": False}
_ONE = (col(Todo.id) == bindparam("target", type_=Uuid())) & live_todos()  # trashed todos are 404


class TodoState(NamedTuple):
    """What a planner write needs to know of the todo it changes, read under its row lock."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    list_id: uuid.UUID | None
    depth: int
    position: str
    completed: bool
    completed_at: datetime | None
    due_at: datetime | None
    recurrence: str | None
    time_zone: str
    recurrence_local: datetime | None
    recurrence_index: int
    reminders: list[dict[str, str]]
    version: int
    has_children: bool  # no subtasks: the subtree statements can be skipped


class ParentPlace(NamedTuple):
    list_id: uuid.UUID | None
    depth: int


_CHILD = aliased(Todo, name="child")
# One probe of the children index (the row's own subtasks are the owner's: the composite foreign key).
CHILDREN = exists().where(col(_CHILD.parent_id) == col(Todo.id)).correlate(Todo)
HAS_CHILDREN = CHILDREN.label("has_children")
_STATE = (
    select_columns(*(col(getattr(Todo, name)) for name in TodoState._fields[:-1]), HAS_CHILDREN)
    .where(_ONE)
    .with_for_update(of=Todo)
)
_PARENT = select_columns(col(Todo.list_id), col(Todo.depth)).where(
    col(Todo.id) == bindparam("parent", type_=Uuid()), live_todos()
)


def _subtree(name: str) -> CTE:
    """The todo `:root` and every todo below it, each with its depth and its level under the root."""
    root = select_columns(col(Todo.id), col(Todo.depth), literal(0).label("level"))
    tree = root.where(col(Todo.id) == bindparam("root", type_=Uuid()), owned_todos()).cte(name, recursive=True)
    step = (
        select_columns(col(Todo.id), col(Todo.depth), tree.c.level + 1)
        .select_from(Todo)
        .join(tree, col(Todo.parent_id) == tree.c.id)
        .where(owned_todos(), tree.c.level < MAX_DEPTH)
    )
    return tree.union_all(step)


def subtree_ids() -> Any:
    """SELECT the ids of the subtree of `:root` (the todo itself included); bind `root` and `owner`."""
    tree = _subtree("subtree")
    return select(tree.c.id)


def _descendant_ids() -> Any:
    tree = _subtree("descendants")
    return select(tree.c.id).where(tree.c.level > 0)


_TREE = _subtree("shape")
# The subtree's lowest depth, and whether `:parent` lies in it (a move under it would be a cycle).
_SHAPE = select_columns(
    func.max(_TREE.c.depth), func.coalesce(func.bool_or(_TREE.c.id == bindparam("parent", type_=Uuid())), False)
)
_IN_DESCENDANTS = col(Todo.id).in_(_descendant_ids())
_TOUCH: dict[str, Any] = {"updated_at": func.now(), "version": col(Todo.version) + 1}
_MOVE_DESCENDANTS: Update = (
    update(Todo)
    .where(owned_todos(), _IN_DESCENDANTS)
    .values(
        list_id=bindparam("new_list_id", type_=Uuid()),
        depth=col(Todo.depth) + bindparam("shift"),
        **_TOUCH,
    )
    .execution_options(**_NO_SYNC)
)


def _set_completed(done: bool) -> ReturningUpdate[uuid.UUID, datetime | None]:
    """Complete (or reopen) every live descendant that is not already; their ids and due dates come
    back (a subtask in the trash stays as it was deleted)."""
    was: ColumnElement[bool] = col(Todo.completed).is_(not done)
    return (
        update(Todo)
        .where(live_todos(), _IN_DESCENDANTS, was)
        .values(completed=done, completed_at=func.now() if done else None, **_TOUCH)
        .returning(col(Todo.id), col(Todo.due_at))
        .execution_options(**_NO_SYNC)
    )


# Not named `deleted_at`: the restore's SET deleted_at = NULL takes that name for its own parameter.
_TRASHED_AT = bindparam("trashed_at", type_=DateTime(timezone=True))
# DELETE of a todo takes its live subtasks to the trash with it, marked and stamped with its time.
_TRASH_DESCENDANTS: Update = (
    update(Todo)
    .where(live_todos(), _IN_DESCENDANTS)
    .values(deleted_at=_TRASHED_AT, deleted_with_parent=True, version=col(Todo.version) + 1)
    .execution_options(**_NO_SYNC)
)


def _trashed_with_root() -> Any:
    """The ids below `:root` that went to the trash with it: down from the root through subtasks
    marked `deleted_with_parent` at its deletion time only (one deleted on its own earlier, and
    what it took with it, stays in the trash)."""
    root = select_columns(col(Todo.id), literal(0).label("level")).where(
        col(Todo.id) == bindparam("root", type_=Uuid()), owned_todos()
    )
    tree = root.cte("trashed_with", recursive=True)
    step = (
        select_columns(col(Todo.id), tree.c.level + 1)
        .select_from(Todo)
        .join(tree, col(Todo.parent_id) == tree.c.id)
        .where(
            owned_todos(),
            col(Todo.deleted_with_parent).is_(True),
            col(Todo.deleted_at) == _TRASHED_AT,
            tree.c.level < MAX_DEPTH,
        )
    )
    tree = tree.union_all(step)
    return select(tree.c.id).where(tree.c.level > 0)


_WITH_ROOT = owned_todos() & col(Todo.id).in_(_trashed_with_root())
_COUNT_WITH_ROOT = select(func.count()).select_from(Todo).where(_WITH_ROOT)
_RESTORE_WITH_ROOT: Update = (
    update(Todo)
    .where(_WITH_ROOT)
    .values(deleted_at=None, deleted_with_parent=False, updated_at=func.now(), version=col(Todo.version) + 1)
    .execution_options(**_NO_SYNC)
)

_COMPLETE_DESCENDANTS = _set_completed(True)
_REOPEN_DESCENDANTS = _set_completed(False)


def lock_todo(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID) -> TodoState | None:
    """The todo's state, its row locked until the unit of work ends (None: not the user's)."""
    row = session.exec(_STATE, params={OWNER: user_id, "target": todo_id}).first()
    return None if row is None else TodoState._make(row)


def parent_place(session: Session, user_id: uuid.UUID, parent_id: uuid.UUID) -> ParentPlace | None:
    row = session.exec(_PARENT, params={OWNER: user_id, "parent": parent_id}).first()
    return None if row is None else ParentPlace._make(row)


def subtree_shape(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, parent_id: uuid.UUID) -> tuple[int, bool]:
    """The subtree's height below the todo (0: no subtasks) and whether `parent_id` is in it."""
    deepest, contains = session.exec(_SHAPE, params={OWNER: user_id, "root": todo_id, "parent": parent_id}).one()
    return (0 if deepest is None else int(deepest)), bool(contains)


def move_descendants(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, list_id: uuid.UUID | None, shift: int
) -> None:
    """The subtasks follow their root to its list and level (their own order is kept)."""
    params = {OWNER: user_id, "root": todo_id, "new_list_id": list_id, "shift": shift}
    session.exec(_MOVE_DESCENDANTS, params=params)


def complete_descendants(
    session: Session, user_id: uuid.UUID, todo_id: uuid.UUID
) -> list[tuple[uuid.UUID, datetime | None]]:
    """Complete the open subtasks (every level); (id, due date) of those that became completed."""
    rows = session.exec(_COMPLETE_DESCENDANTS, params={OWNER: user_id, "root": todo_id})
    return [(row[0], row[1]) for row in rows]


def reopen_descendants(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID) -> list[uuid.UUID]:
    """Reopen the completed subtasks (a recurring parent's next occurrence); their ids."""
    return [row[0] for row in session.exec(_REOPEN_DESCENDANTS, params={OWNER: user_id, "root": todo_id})]


def trash_descendants(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, deleted_at: datetime) -> None:
    """The live subtasks (every level) follow their trashed root, at its deletion time."""
    session.exec(_TRASH_DESCENDANTS, params={OWNER: user_id, "root": todo_id, "trashed_at": deleted_at})


def trashed_with(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, deleted_at: datetime) -> int:
    """How many subtasks went to the trash with the todo (and come back with it)."""
    params = {OWNER: user_id, "root": todo_id, "trashed_at": deleted_at}
    return int(session.exec(_COUNT_WITH_ROOT, params=params).one())


def restore_with(session: Session, user_id: uuid.UUID, todo_id: uuid.UUID, deleted_at: datetime) -> None:
    """Bring back the subtasks that went to the trash with the todo."""
    session.exec(_RESTORE_WITH_ROOT, params={OWNER: user_id, "root": todo_id, "trashed_at": deleted_at})
