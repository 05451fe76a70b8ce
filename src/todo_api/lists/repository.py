"""List storage, scoped to one owner, with each list's todo counts computed in the same query.

Like the todo repository: SQLAlchemy expressions over the SQLModel tables, plain rows back.
Rows carry the list's columns plus `todo_count` and `open_count`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Row,
    Text,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from todo_api.errors import violated_constraint
from todo_api.models.base import new_values, versioned_changes
from todo_api.models.todo import todos_table
from todo_api.models.todo_list import lists_table, name_key
from todo_api.pagination import DATETIME, SortSpec, TextKey, page_params

UNIQUE_NAME = "uq_lists_user_id_lower_name"
lists = lists_table.c
todos = todos_table.c


class DuplicateNameError(Exception):
    """Another list of the same owner already has this name (case-insensitively)."""


def _count(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    in_list = (todos.list_id == lists.id) & (todos.user_id == lists.user_id)
    statement = select(func.count()).select_from(todos_table).where(in_list, *conditions).correlate(lists_table)
    return statement.scalar_subquery()


ALL_TODOS = _count()
OPEN_TODOS = _count(todos.completed.is_(False))
WITH_COUNTS = (lists_table, ALL_TODOS.label("todo_count"), OPEN_TODOS.label("open_count"))

type Version = tuple[int, int, int]  # (version, todo_count, open_count): what a list's ETag names


def _at(states: int | None) -> list[ColumnElement[bool]]:
    """The row is in one of `states` states given as bind parameters (`version_<i>`,
    `todo_count_<i>`, `open_count_<i>`): the counts are part of the representation. None: any."""
    if states is None:
        return []
    conditions = [
        (lists.version == bindparam(f"version_{i}", type_=Integer))
        & (bindparam(f"todo_count_{i}", type_=Integer) == ALL_TODOS)
        & (bindparam(f"open_count_{i}", type_=Integer) == OPEN_TODOS)
        for i in range(states)
    ]
    return [or_(false(), *conditions)]


def _state_params(versions: frozenset[Version] | None) -> dict[str, int]:
    params: dict[str, int] = {}
    for i, (version, todo_count, open_count) in enumerate(sorted(versions or ())):
        params |= {f"version_{i}": version, f"todo_count_{i}": todo_count, f"open_count_{i}": open_count}
    return params


def _states(versions: frozenset[Version] | None) -> int | None:
    """How many states a conditional write accepts; None for an unconditional one."""
    return None if versions is None else len(versions)


def _spec(name: str, key: ColumnElement[Any], kind: Any) -> SortSpec:
    codec = DATETIME if isinstance(kind, DateTime) else TextKey(max_length=100)  # a list name
    return SortSpec(
        name=name,
        descending=name.startswith("-"),
        key=key,
        id_column=lists.id,
        cursor_value=key,
        codec=codec,
        bound=lambda value: type_coerce(value, kind),
    )


SORTS: dict[str, SortSpec] = {
    spec.name: spec
    for spec in (
        _spec("created_at", lists.created_at, DateTime(timezone=True)),
        _spec("-created_at", lists.created_at, DateTime(timezone=True)),
        _spec("name", name_key, Text()),
        _spec("-name", name_key, Text()),
    )
}

# Built once per shape, values as bind parameters (see todos.repository).
_MINE = lists.user_id == bindparam("owner")
_ONE = (lists.id == bindparam("target")) & _MINE
_EXISTS = select(lists.id).where(_ONE)
_GET = select(*WITH_COUNTS).where(_ONE)
_COUNT = select(func.count()).select_from(lists_table).where(_MINE)
_INSERT = insert(lists_table).returning(*WITH_COUNTS)


_PAGES = {name: spec.pages(WITH_COUNTS, _MINE) for name, spec in SORTS.items()}


@functools.lru_cache(maxsize=64)
def _update(fields: frozenset[str], states: int | None) -> Executable:
    changes = versioned_changes(lists_table, fields)
    return update(lists_table).where(_ONE, *_at(states)).values(changes).returning(*WITH_COUNTS)


@functools.lru_cache(maxsize=64)
def _delete(states: int | None) -> Executable:
    return delete(lists_table).where(_ONE, *_at(states)).returning(lists.id)


class ListRepository:
    def __init__(self, db: Connection, user_id: uuid.UUID) -> None:
        self.db = db
        self.user_id = user_id
        self._owner = {"owner": user_id}

    def exists(self, list_id: uuid.UUID) -> bool:
        return self.db.execute(_EXISTS, {**self._owner, "target": list_id}).first() is not None

    def get(self, list_id: uuid.UUID) -> Row[Any] | None:
        return self.db.execute(_GET, {**self._owner, "target": list_id}).first()

    def count(self) -> int:
        return int(self.db.execute(_COUNT, self._owner).scalar_one())

    def page(self, spec: SortSpec, after: tuple[Any, uuid.UUID] | None, limit: int) -> Sequence[Row[Any]]:
        """Rows with counts and the cursor value (`sort_value`), in `spec` order."""
        return self.db.execute(_PAGES[spec.name][after is not None], {**self._owner, **page_params(after, limit)}).all()

    def create(self, name: str) -> Row[Any]:
        row = self._execute(_INSERT, {"user_id": self.user_id, "name": name})
        if row is None:  # pragma: no cover - INSERT … RETURNING always returns its row
            raise RuntimeError("no row returned")
        return row

    def update(
        self, list_id: uuid.UUID, values: dict[str, Any], versions: frozenset[Version] | None = None
    ) -> Row[Any] | None:
        params = {**new_values(values), **self._owner, "target": list_id, **_state_params(versions)}
        return self._execute(_update(frozenset(values), _states(versions)), params)

    def delete(self, list_id: uuid.UUID, versions: frozenset[Version] | None = None) -> bool:
        """Delete the list; its todos go with it (ON DELETE CASCADE)."""
        params = {**self._owner, "target": list_id, **_state_params(versions)}
        return self.db.execute(_delete(_states(versions)), params).first() is not None

    def _execute(self, statement: Any, params: dict[str, Any]) -> Row[Any] | None:
        try:
            return self.db.execute(statement, params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == UNIQUE_NAME:
                raise DuplicateNameError from None
            raise
