"""List storage, scoped to one owner, with each list's todo counts computed in the same query."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Text, false, func, literal, or_
from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.models import Todo, TodoList
from todo_api.models.todo_list import lists_table, name_key
from todo_api.pagination import DATETIME, TEXT, SortSpec

UNIQUE_NAME = "uq_lists_user_id_lower_name"

type ListRow = tuple[TodoList, int, int]


class DuplicateNameError(Exception):
    """Another list of the same owner already has this name (case-insensitively)."""


def _count(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    in_list = (col(Todo.list_id) == col(TodoList.id)) & (col(Todo.user_id) == col(TodoList.user_id))
    statement = select(func.count()).select_from(Todo).where(in_list, *conditions).correlate(TodoList)
    return statement.scalar_subquery()


ALL_TODOS = _count()
OPEN_TODOS = _count(col(Todo.completed).is_(False))
TODO_COUNT = ALL_TODOS.label("todo_count")
OPEN_COUNT = OPEN_TODOS.label("open_count")

type Version = tuple[int, int, int]  # (version, todo_count, open_count): what a list's ETag names


def _at(versions: frozenset[Version] | None) -> list[ColumnElement[bool]]:
    """The row is in one of these states (the counts are part of the representation)."""
    if versions is None:
        return []
    states = [
        (col(TodoList.version) == version) & (todos == ALL_TODOS) & (open_todos == OPEN_TODOS)
        for version, todos, open_todos in sorted(versions)
    ]
    return [or_(false(), *states)]


def _spec(name: str, key: ColumnElement[Any], kind: Any) -> SortSpec:
    codec = DATETIME if isinstance(kind, DateTime) else TEXT
    return SortSpec(
        name=name,
        descending=name.startswith("-"),
        key=key,
        id_column=lists_table.c.id,
        cursor_value=key,
        codec=codec,
        bound=lambda value: literal(value, type_=kind),
    )


SORTS: dict[str, SortSpec] = {
    spec.name: spec
    for spec in (
        _spec("created_at", lists_table.c.created_at, DateTime(timezone=True)),
        _spec("-created_at", lists_table.c.created_at, DateTime(timezone=True)),
        _spec("name", name_key, Text()),
        _spec("-name", name_key, Text()),
    )
}


class ListRepository:
    def __init__(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id

    def _mine(self) -> ColumnElement[bool]:
        return col(TodoList.user_id) == self.user_id

    def _one(self, list_id: uuid.UUID) -> ColumnElement[bool]:
        return (col(TodoList.id) == list_id) & self._mine()

    async def exists(self, list_id: uuid.UUID) -> bool:
        statement = select(col(TodoList.id)).where(self._one(list_id))
        return (await self.session.exec(statement)).first() is not None

    async def get(self, list_id: uuid.UUID) -> ListRow | None:
        statement = select(TodoList, TODO_COUNT, OPEN_COUNT).where(self._one(list_id))
        row = (await self.session.exec(statement)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def page(self, spec: SortSpec, after: tuple[Any, uuid.UUID] | None, limit: int) -> Sequence[Any]:
        """Rows of (list, todo_count, open_count, cursor value) in `spec` order."""
        statement = select(TodoList, TODO_COUNT, OPEN_COUNT, spec.cursor_value).where(self._mine())
        if after is not None:
            statement = statement.where(spec.after(*after))
        statement = statement.order_by(*spec.order_by()).limit(limit)
        return (await self.session.exec(statement)).all()

    async def create(self, name: str) -> TodoList:
        statement = sa_insert(TodoList).values(user_id=self.user_id, name=name).returning(TodoList)
        result = await self._execute(statement)
        created: TodoList = result.scalar_one()
        return created

    async def count(self) -> int:
        statement = select(func.count()).select_from(TodoList).where(self._mine())
        return int((await self.session.exec(statement)).one())

    async def update(
        self, list_id: uuid.UUID, values: dict[str, Any], versions: frozenset[Version] | None = None
    ) -> ListRow | None:
        statement = (
            sa_update(TodoList)
            .where(self._one(list_id), *_at(versions))
            .values(**values, updated_at=func.now(), version=col(TodoList.version) + 1)
            .returning(TodoList, TODO_COUNT, OPEN_COUNT)
            .execution_options(synchronize_session=False)
        )
        row = (await self._execute(statement)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def delete(self, list_id: uuid.UUID, versions: frozenset[Version] | None = None) -> bool:
        """Delete the list; its todos go with it (ON DELETE CASCADE)."""
        statement = sa_delete(TodoList).where(self._one(list_id), *_at(versions)).returning(col(TodoList.id))
        return (await self.session.exec(statement)).first() is not None

    async def _execute(self, statement: Any) -> Any:
        try:
            return await self.session.exec(statement, execution_options={"populate_existing": True})
        except IntegrityError as exc:
            if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) == UNIQUE_NAME:
                raise DuplicateNameError from None
            raise
