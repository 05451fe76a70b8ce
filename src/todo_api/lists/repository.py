"""List storage, scoped to one owner, with each list's todo counts computed in the same query.

Like the todo repository: SQLAlchemy expressions over the SQLModel tables, plain rows back.
Rows carry the list's columns plus `todo_count` and `open_count`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    Text,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from todo_api.errors import violated_constraint
from todo_api.models.todo import todos_table
from todo_api.models.todo_list import lists_table, name_key
from todo_api.pagination import DATETIME, TEXT, SortSpec

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


def _at(versions: frozenset[Version] | None) -> list[ColumnElement[bool]]:
    """The row is in one of these states (the counts are part of the representation)."""
    if versions is None:
        return []
    states = [
        (lists.version == version) & (todo_count == ALL_TODOS) & (open_count == OPEN_TODOS)
        for version, todo_count, open_count in sorted(versions)
    ]
    return [or_(false(), *states)]


def _spec(name: str, key: ColumnElement[Any], kind: Any) -> SortSpec:
    codec = DATETIME if isinstance(kind, DateTime) else TEXT
    return SortSpec(
        name=name,
        descending=name.startswith("-"),
        key=key,
        id_column=lists.id,
        cursor_value=key,
        codec=codec,
        bound=lambda value: literal(value, type_=kind),
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

_MINE = lists.user_id == bindparam("owner")
_ONE = (lists.id == bindparam("target")) & _MINE
_EXISTS = select(lists.id).where(_ONE)
_GET = select(*WITH_COUNTS).where(_ONE)
_COUNT = select(func.count()).select_from(lists_table).where(_MINE)


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
        statement = select(*WITH_COUNTS, spec.cursor_value.label("sort_value")).where(_MINE)
        if after is not None:
            statement = statement.where(spec.after(*after))
        statement = statement.order_by(*spec.order_by()).limit(limit)
        return self.db.execute(statement, self._owner).all()

    def create(self, name: str) -> Row[Any]:
        statement = insert(lists_table).values(user_id=self.user_id, name=name).returning(*WITH_COUNTS)
        row = self._execute(statement, {})
        if row is None:  # pragma: no cover - INSERT … RETURNING always returns its row
            raise RuntimeError("no row returned")
        return row

    def update(
        self, list_id: uuid.UUID, values: dict[str, Any], versions: frozenset[Version] | None = None
    ) -> Row[Any] | None:
        statement = (
            update(lists_table)
            .where(_ONE, *_at(versions))
            .values(**values, updated_at=func.now(), version=lists.version + 1)
            .returning(*WITH_COUNTS)
        )
        return self._execute(statement, {**self._owner, "target": list_id})

    def delete(self, list_id: uuid.UUID, versions: frozenset[Version] | None = None) -> bool:
        """Delete the list; its todos go with it (ON DELETE CASCADE)."""
        statement = delete(lists_table).where(_ONE, *_at(versions)).returning(lists.id)
        return self.db.execute(statement, {**self._owner, "target": list_id}).first() is not None

    def _execute(self, statement: Any, params: dict[str, Any]) -> Row[Any] | None:
        try:
            return self.db.execute(statement, params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == UNIQUE_NAME:
                raise DuplicateNameError from None
            raise
