"""Todo storage, scoped to one owner: every statement starts from `live_todos()` (the owner's
todos outside the trash; the trash itself is `todo_api.trash`).

Statements are built from the SQLModel class (`select(Todo.id, …)`, ORM-enabled `insert(Todo)`,
`update(Todo)`), once per shape, with a bind parameter for every value, and run on the unit of
work's SQLModel `Session`. Building a statement and deriving its cache key costs more than running
it, so they are built at import (or once per shape) and reused. What a page holds, and in what
order, is `todos.pages`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import ColumnElement, Integer, Uuid, bindparam, case
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate, Update
from sqlmodel import Session, col, exists, func, insert, or_, select, update
from sqlmodel.sql.expression import Select

from todo_api.errors import violated_constraint
from todo_api.models import Todo, TodoList, User
from todo_api.models.base import returned, sql_type
from todo_api.models.scoping import OWNER, live_lists, live_todos, the_owner
from todo_api.pagination import Position, SortSpec, page_params, select_columns
from todo_api.storage.faults import Rerun
from todo_api.todos.pages import COLUMNS, TodoFilters, TodoPageRow, page_statement
from todo_api.todos.tree import CHILDREN, HAS_CHILDREN

FK_LIST = "fk_todos_list_id_user_id_lists"
FK_PARENT = "fk_todos_parent_id_user_id_todos"
UNIQUE_POSITION = "uq_todos_user_id_list_id_parent_id_position"


class ListReferenceError(Exception):
    """The database refused a `list_id` that is not one of the owner's lists."""


class ParentReferenceError(Exception):
    """The database refused a `parent_id` that is not one of the owner's todos (deleted meanwhile)."""


class TodoRecord(NamedTuple):
    """A todo as the API represents it (`TodoRead`'s fields, in order) and its row version."""

    id: uuid.UUID
    title: str
    description: str
    completed: bool
    completed_at: datetime | None
    due_at: datetime | None
    priority: int
    tags: list[str]
    list_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    parent_id: uuid.UUID | None
    position: str
    recurrence: str | None
    time_zone: str
    reminders: list[dict[str, str]]
    version: int


class TodoValues(TypedDict, total=False):
    """Column values of a write (priority as its rank, tags with their case-folded keys)."""

    title: str
    description: str
    completed: bool
    due_at: datetime | None
    priority: int
    tags: list[str]
    tag_keys: list[str]
    list_id: uuid.UUID | None


class PlannerValues(TodoValues, total=False):
    """The planner's columns (issue 15): hierarchy, order, series state, reminders. Kept apart from
    `TodoValues` (the plain fields), whose every combination is one statement shape."""

    parent_id: uuid.UUID | None
    depth: int
    position: str
    recurrence: str | None
    time_zone: str
    recurrence_local: datetime | None
    recurrence_index: int
    reminders: list[dict[str, str]]


# Column values of a new todo that the client left out (PUT and POST bodies carry them all).
_DEFAULTS: dict[str, Any] = {
    "description": "",
    "completed": False,
    "due_at": None,
    "priority": 0,
    "tags": [],
    "tag_keys": [],
    "list_id": None,
    "parent_id": None,
    "depth": 0,
    "recurrence": None,
    "time_zone": "UTC",
    "recurrence_local": None,
    "recurrence_index": 0,
    "reminders": [],
}


# What a todo's representation needs (not the owner, not tag_keys), in `TodoRead`'s field order,
# and the version (a single todo's ETag; pages have none per item).
_RECORD = [*COLUMNS, col(Todo.version)]
_ONE = (col(Todo.id) == bindparam("target")) & live_todos()
_GET = select(*_RECORD).where(_ONE)
_COUNT = select(func.count()).select_from(Todo).where(live_todos())
# ORM-enabled DML without objects to keep in step: skip the session's synchronisation pass.
_NO_SYNC = {"synchronize_session": False}


_CREATED = list(PlannerValues.__annotations__)


# A todo goes only into a live list of its owner (the foreign key refuses other users' lists). The
# INSERT reads it after the creator took the user's write turn, which trashing a list takes too.
_NEW_LIST = bindparam("new_list_id", type_=sql_type(Todo.list_id))
_INTO_LIVE_LIST = or_(_NEW_LIST.is_(None), exists().where(live_lists(), col(TodoList.id) == _NEW_LIST))


@functools.cache
def _create(completed: bool, capped: bool) -> Select[*tuple[Any, ...]]:
    """INSERT … SELECT from the owner's user row, locked (FOR UPDATE), so that concurrent creates of
    one user take turns and each sees the count its predecessor left: the cap (`limit`) holds
    across workers and replicas. No row comes back when the cap is reached, the list is in the
    trash or the user row is gone. The values are bind parameters `new_<column>`."""
    values: list[Any] = [bindparam(f"new_{name}", type_=sql_type(getattr(Todo, name))) for name in _CREATED]
    names = ["id", "user_id", *_CREATED, *(["completed_at"] if completed else [])]
    columns = [col(getattr(Todo, name)) for name in names]
    values += [func.now()] if completed else []
    source = select_columns(bindparam("new_id", type_=Uuid()), col(User.id), *values).where(
        the_owner(), _INTO_LIVE_LIST
    )
    if capped:
        source = source.where(col(User.todo_count) < bindparam("limit", type_=Integer()))
    statement = insert(Todo).from_select(columns, source.with_for_update()).returning(*_RECORD)
    return returned(statement.execution_options(dml_strategy="raw"))  # bind parameters feed the SELECT


_IF_VERSION = col(Todo.version).in_(bindparam("versions", expanding=True))
# DELETE moves a todo to the trash (`todo_api.trash` restores or purges it).
_DELETE: dict[bool, ReturningUpdate[datetime | None, bool]] = {
    conditional: update(Todo)
    .where(_ONE, *([_IF_VERSION] if conditional else []))
    .values(deleted_at=func.now(), deleted_with_list=False, deleted_with_parent=False, version=col(Todo.version) + 1)
    .returning(col(Todo.deleted_at), HAS_CHILDREN)
    .execution_options(**_NO_SYNC)
    for conditional in (False, True)
}


def completed_at_for(completed: ColumnElement[bool]) -> ColumnElement[Any]:
    """Keep the first completion time while completed; clear it when reopened."""
    return case((completed, func.coalesce(col(Todo.completed_at), func.now())), else_=None)


@functools.lru_cache(maxsize=256)
def _update(fields: frozenset[str], conditional: bool) -> Select[*tuple[Any, ...]]:
    return returned(_update_statement(fields, conditional).returning(*_RECORD))


@functools.lru_cache(maxsize=256)
def _update_statement(fields: frozenset[str], conditional: bool) -> Update:
    """SET each of `fields` from `:new_<field>`, `updated_at` now, `version` bumped (and the
    completion time with `completed`)."""
    assignments: dict[Any, Any] = {
        name: bindparam(f"new_{name}", type_=sql_type(getattr(Todo, name))) for name in sorted(fields)
    }
    assignments |= {"updated_at": func.now(), "version": col(Todo.version) + 1}
    if "completed" in fields:
        assignments["completed_at"] = completed_at_for(assignments["completed"])
    where = [_ONE, _IF_VERSION] if conditional else [_ONE]
    return update(Todo).where(*where).values(assignments).execution_options(**_NO_SYNC)


# A plain completion (or reopening): the todo recurs not, has no subtasks and no reminders. Then one
# UPDATE does it all, and returns the state it had before (subqueries in RETURNING read the
# statement's snapshot, from before the update) for the history (`completions.check_off`).
_PRIOR = aliased(Todo, name="prior")
_PLAIN_COMPLETION = [col(Todo.recurrence).is_(None), ~CHILDREN, func.jsonb_array_length(col(Todo.reminders)) == 0]


def _before(column: Any) -> Any:
    """`column` of this row as it was before the statement."""
    prior = select(column).where(col(_PRIOR.id) == col(Todo.id), col(_PRIOR.user_id) == col(Todo.user_id))
    return prior.correlate(Todo).scalar_subquery()


_BEFORE = [
    _before(col(_PRIOR.completed)).label("was_completed"),
    _before(col(_PRIOR.completed_at)).label("was_completed_at"),
]


def plain_completion(fields: frozenset[str], conditional: bool) -> ReturningUpdate[*tuple[Any, ...]]:
    """`update` of a plain todo (no series, subtasks or reminders; no row otherwise), returning the
    record, then whether it was completed before and since when."""
    return _update_statement(fields, conditional).where(*_PLAIN_COMPLETION).returning(*_RECORD, *_BEFORE)


def _versions(versions: Iterable[int] | None) -> dict[str, Any]:
    return {} if versions is None else {"versions": sorted(versions)}


class Trashed(NamedTuple):
    deleted_at: datetime
    has_children: bool


class TodoRepository:
    def __init__(self, session: Session, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id
        self._owner = {OWNER: user_id}

    def get(self, todo_id: uuid.UUID) -> TodoRecord | None:
        row = self.session.exec(_GET, params={**self._owner, "target": todo_id}).first()
        return None if row is None else TodoRecord._make(row)

    def page(self, filters: TodoFilters, spec: SortSpec, after: Position | None, limit: int) -> list[TodoPageRow]:
        """Up to `limit` todos matching every filter, in `spec` order after the `after` position."""
        params = filters.params()
        statement = page_statement(spec.name, after is not None, frozenset(params))
        rows = self.session.exec(statement, params={**params, **self._owner, **page_params(after, limit)})
        return [TodoPageRow._make(row) for row in rows]

    def count(self) -> int:
        return int(self.session.exec(_COUNT, params=self._owner).one())

    def create(self, values: PlannerValues, limit: int) -> TodoRecord | None:
        """The new todo; None if the owner has `limit` todos already (0: no limit) or no account."""
        params = {f"new_{name}": values.get(name, _DEFAULTS.get(name)) for name in _CREATED}
        params |= {**self._owner, "new_id": uuid.uuid4(), "limit": limit}
        try:
            return self._returning(_create(bool(values.get("completed")), limit > 0), params)
        except IntegrityError as exc:
            if violated_constraint(exc) == UNIQUE_POSITION:  # see `positions.last_key_in_turn`
                raise Rerun from None
            raise

    def update(
        self, todo_id: uuid.UUID, values: PlannerValues, versions: Iterable[int] | None = None
    ) -> TodoRecord | None:
        """Apply `values` in one statement (no read-modify-write); None if not found or, when
        `versions` is given, if the row's version is not one of them."""
        params = {f"new_{name}": value for name, value in values.items()}
        params |= {**self._owner, "target": todo_id, **_versions(versions)}
        return self._returning(_update(frozenset(values), versions is not None), params)

    def delete(self, todo_id: uuid.UUID, versions: Iterable[int] | None = None) -> Trashed | None:
        """Move the todo to the trash (its subtasks: `tree.trash_descendants`); None if not found or
        not in one of `versions`."""
        params = {**self._owner, "target": todo_id, **_versions(versions)}
        row = self.session.exec(_DELETE[versions is not None], params=params).first()
        return None if row is None else Trashed(row[0], bool(row[1]))

    def _returning(self, statement: Select[*tuple[Any, ...]], params: dict[str, Any]) -> TodoRecord | None:
        try:
            row = self.session.exec(statement, params=params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == FK_LIST:
                raise ListReferenceError from None
            if violated_constraint(exc) == FK_PARENT:
                raise ParentReferenceError from None
            raise
        return None if row is None else TodoRecord._make(row)
