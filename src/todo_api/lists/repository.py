"""List storage, scoped to one owner's live lists (`live_lists()`), with each list's todo counts computed in
the same query. Built like the todo repository: SQLModel statements, once per shape, bind
parameters for every value, columns rather than entities.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, DateTime, Integer, Text, Uuid, bindparam, false, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert, ReturningUpdate, Update
from sqlmodel import Session, col, func, insert, or_, select, update

from todo_api.errors import violated_constraint
from todo_api.models import Todo, TodoList, User
from todo_api.models.base import sql_type
from todo_api.models.scoping import OWNER, live_lists, live_todos, owned_todos, the_owner
from todo_api.models.todo_list import name_key
from todo_api.pagination import DATETIME, Expression, Position, SortSpec, TextKey, page_params, select_columns

UNIQUE_NAME = "uq_lists_user_id_lower_name"


class DuplicateNameError(Exception):
    """Another list of the same owner already has this name (case-insensitively)."""


class ListState(NamedTuple):
    """What a list's ETag names: its row version and its counts (part of the representation)."""

    version: int
    todo_count: int
    open_count: int


class ListRecord(NamedTuple):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    position: str
    version: int
    todo_count: int
    open_count: int

    @property
    def state(self) -> ListState:
        return ListState(self.version, self.todo_count, self.open_count)


class ListPageRow(NamedTuple):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    position: str
    version: int
    todo_count: int
    open_count: int
    sort_value: Any


def _count(*conditions: ColumnElement[bool], todos: ColumnElement[bool] | None = None) -> Any:
    """Todos of the list in hand (correlated), of the same owner: live ones (`todos`: others)."""
    in_list = col(Todo.list_id) == col(TodoList.id)
    statement = select(func.count()).select_from(Todo).where(live_todos() if todos is None else todos, in_list)
    return statement.where(*conditions).correlate(TodoList).scalar_subquery()


ALL_TODOS = _count()
OPEN_TODOS = _count(col(Todo.completed).is_(False))
# A list in the trash counts the todos it took with it (what restoring it brings back).
WITH_LIST = owned_todos() & col(Todo.deleted_with_list).is_(True)
TRASHED_COUNTS = [
    _count(todos=WITH_LIST).label("todo_count"),
    _count(col(Todo.completed).is_(False), todos=WITH_LIST).label("open_count"),
]
_COLUMNS = [
    col(TodoList.id),
    col(TodoList.name),
    col(TodoList.created_at),
    col(TodoList.updated_at),
    col(TodoList.position),
]
WITH_COUNTS = [*_COLUMNS, col(TodoList.version), ALL_TODOS.label("todo_count"), OPEN_TODOS.label("open_count")]


def _at(states: int | None) -> list[ColumnElement[bool]]:
    """The row is in one of `states` states given as bind parameters (`state_version_<i>`,
    `state_todo_count_<i>`, `state_open_count_<i>`): the counts are part of the representation. None:
    any. (Not `version_<i>`: SQLAlchemy names the `+ 1` of `version = version + 1` `version_1`.)"""
    if states is None:
        return []
    conditions = [
        (col(TodoList.version) == bindparam(f"state_version_{i}", type_=Integer))
        & (bindparam(f"state_todo_count_{i}", type_=Integer) == ALL_TODOS)
        & (bindparam(f"state_open_count_{i}", type_=Integer) == OPEN_TODOS)
        for i in range(states)
    ]
    return [or_(false(), *conditions)]


def _state_params(states: Iterable[ListState] | None) -> dict[str, int]:
    params: dict[str, int] = {}
    for i, (version, todo_count, open_count) in enumerate(sorted(states or ())):
        params |= {
            f"state_version_{i}": version,
            f"state_todo_count_{i}": todo_count,
            f"state_open_count_{i}": open_count,
        }
    return params


def _spec(name: str, key: Expression, kind: Any) -> SortSpec:
    codec = DATETIME if isinstance(kind, DateTime) else TextKey(max_length=100)  # a list name (or a position key)
    return SortSpec(
        name=name,
        descending=name.startswith("-"),
        key=key,
        id_column=col(TodoList.id),
        cursor_value=key,
        codec=codec,
        bound=lambda value: type_coerce(value, kind),
    )


SORTS: dict[str, SortSpec] = {
    spec.name: spec
    for spec in (
        _spec("created_at", col(TodoList.created_at), DateTime(timezone=True)),
        _spec("-created_at", col(TodoList.created_at), DateTime(timezone=True)),
        _spec("name", name_key, Text()),
        _spec("-name", name_key, Text()),
        _spec("position", col(TodoList.position), sql_type(TodoList.position)),  # the user's order
    )
}

# Built once per shape, values as bind parameters (see todos.repository).
_ONE = (col(TodoList.id) == bindparam("target")) & live_lists()
_GET = select_columns(*WITH_COUNTS).where(_ONE)
_COUNT = select(func.count()).select_from(TodoList).where(live_lists())
# Only a live list of the owner can take todos (the writer holds the user's write turn, so the list
# cannot be trashed meanwhile: see users.service.serialize_writes).
_LIVE = select(col(TodoList.id)).where(_ONE)


@functools.cache
def _create(capped: bool) -> Insert:
    """INSERT … SELECT from the owner's locked user row: the cap holds across workers (see the
    todo repository). A new list has no todos: its counts are zero, not a query."""
    source = select_columns(
        bindparam("new_id", type_=Uuid()),
        col(User.id),
        bindparam("new_name", type_=Text()),
        bindparam("new_position", type_=sql_type(TodoList.position)),
    )
    source = source.where(the_owner())
    if capped:
        source = source.where(col(User.list_count) < bindparam("limit", type_=Integer()))
    columns = [col(TodoList.id), col(TodoList.user_id), col(TodoList.name), col(TodoList.position)]
    statement = insert(TodoList).from_select(columns, source.with_for_update())
    returning = statement.returning(*_COLUMNS, col(TodoList.version))
    return returning.execution_options(dml_strategy="raw")  # bind parameters feed the SELECT, not VALUES


_PAGES = {name: spec.pages(WITH_COUNTS, live_lists()) for name, spec in SORTS.items()}
_NO_SYNC = {"synchronize_session": False}


@functools.lru_cache(maxsize=64)
def _update(fields: frozenset[str], states: int | None) -> Update:
    changes: dict[str, Any] = {name: bindparam(f"new_{name}") for name in sorted(fields)}
    changes |= {"updated_at": func.now(), "version": col(TodoList.version) + 1}
    statement = update(TodoList).where(_ONE, *_at(states)).values(changes).returning(*WITH_COUNTS)
    return statement.execution_options(**_NO_SYNC)


@functools.lru_cache(maxsize=64)
def _delete(states: int | None) -> ReturningUpdate[uuid.UUID, datetime | None]:
    """DELETE moves a list to the trash (its todos follow: `_TRASH_TODOS`)."""
    values = {"deleted_at": func.now(), "version": col(TodoList.version) + 1}
    statement = update(TodoList).where(_ONE, *_at(states)).values(values)
    return statement.returning(col(TodoList.id), col(TodoList.deleted_at)).execution_options(**_NO_SYNC)


# A todo write locks the todo, then its list (list counts): trashing a list locks its todos first.
_LOCK_TODOS = (
    select(col(Todo.id))
    .where(live_todos(), col(Todo.list_id) == bindparam("target", type_=Uuid()))
    .order_by(col(Todo.id))
    .with_for_update(key_share=True)
)
_TRASH_TODOS = (
    update(Todo)
    .where(live_todos(), col(Todo.list_id) == bindparam("target", type_=Uuid()))
    .values(
        deleted_at=bindparam("deleted_at", type_=DateTime(timezone=True)),
        deleted_with_list=True,
        version=col(Todo.version) + 1,
    )
    .execution_options(**_NO_SYNC)
)


class ListRepository:
    def __init__(self, session: Session, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id
        self._owner = {OWNER: user_id}

    def get(self, list_id: uuid.UUID) -> ListRecord | None:
        row = self.session.exec(_GET, params={**self._owner, "target": list_id}).first()
        return None if row is None else ListRecord._make(row)

    def count(self) -> int:
        return int(self.session.exec(_COUNT, params=self._owner).one())

    def page(self, spec: SortSpec, after: Position | None, limit: int) -> list[ListPageRow]:
        """Lists with their counts, in `spec` order after the `after` position."""
        statement = _PAGES[spec.name][after is not None]
        rows = self.session.exec(statement, params={**self._owner, **page_params(after, limit)})
        return [ListPageRow._make(row) for row in rows]

    def create(self, name: str, limit: int, position: str) -> ListRecord | None:
        """The new list; None if the owner has `limit` lists already (0: no limit) or no account."""
        params = {**self._owner, "new_id": uuid.uuid4(), "new_name": name, "new_position": position, "limit": limit}
        try:
            row = self.session.exec(_create(limit > 0), params=params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == UNIQUE_NAME:
                raise DuplicateNameError from None
            raise
        return None if row is None else ListRecord._make((*row, 0, 0))

    def update(self, list_id: uuid.UUID, name: str, states: Iterable[ListState] | None = None) -> ListRecord | None:
        """Rename in one statement; None if not found or, when `states` is given, not in one of them."""
        state_list = None if states is None else list(states)
        params = {"new_name": name, **self._owner, "target": list_id, **_state_params(state_list)}
        return self._returning(_update(frozenset({"name"}), None if state_list is None else len(state_list)), params)

    def delete(self, list_id: uuid.UUID, states: Iterable[ListState] | None = None) -> bool:
        """Move the list to the trash, and its live todos with it (marked `deleted_with_list`)."""
        state_list = None if states is None else list(states)
        params = {**self._owner, "target": list_id, **_state_params(state_list)}
        statement = _delete(None if state_list is None else len(state_list))
        self.session.exec(_LOCK_TODOS, params={**self._owner, "target": list_id}).all()
        trashed = self.session.exec(statement, params=params).first()
        if trashed is None:
            return False
        self.session.exec(_TRASH_TODOS, params={**self._owner, "target": list_id, "deleted_at": trashed[1]})
        return True

    def is_live(self, list_id: uuid.UUID) -> bool:
        """Whether `list_id` is one of the owner's live lists."""
        return self.session.exec(_LIVE, params={**self._owner, "target": list_id}).first() is not None

    def _returning(self, statement: Any, params: dict[str, Any]) -> ListRecord | None:
        try:
            row = self.session.exec(statement, params=params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == UNIQUE_NAME:
                raise DuplicateNameError from None
            raise
        return None if row is None else ListRecord._make(row)
