"""Todo storage. Built with the owner's id; every statement starts from the owner's rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, case, func, literal, literal_column, or_
from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.models import Todo
from todo_api.models.todo import due_at_asc_key, due_at_desc_key, title_key, todos_table
from todo_api.pagination import DATETIME, INTEGER, TEXT, KeyCodec, SortSpec

FK_LIST = "fk_todos_list_id_user_id_lists"


class ListReferenceError(Exception):
    """The database refused a `list_id` that is not one of the owner's lists."""


def _typed(kind: Any) -> Any:
    return lambda value: literal(value, type_=kind)


def _due_bound(far_end: str) -> Any:
    sentinel: ColumnElement[Any] = literal_column(f"'{far_end}'::timestamp with time zone")
    return lambda value: func.coalesce(literal(value, type_=DateTime(timezone=True)), sentinel)


def _spec(
    name: str, key: ColumnElement[Any], codec: KeyCodec, bound: Any, cursor_value: ColumnElement[Any] | None = None
) -> SortSpec:
    descending = name.startswith("-")
    return SortSpec(
        name=name,
        descending=descending,
        key=key,
        id_column=columns.id,
        cursor_value=key if cursor_value is None else cursor_value,
        codec=codec,
        bound=bound,
    )


def _both_directions(name: str, key: ColumnElement[Any], codec: KeyCodec, bound: Any) -> list[SortSpec]:
    return [_spec(name, key, codec, bound), _spec(f"-{name}", key, codec, bound)]


columns = todos_table.c
TIMESTAMP = DateTime(timezone=True)
SORTS: dict[str, SortSpec] = {
    spec.name: spec
    for spec in [
        *_both_directions("created_at", columns.created_at, DATETIME, _typed(TIMESTAMP)),
        *_both_directions("updated_at", columns.updated_at, DATETIME, _typed(TIMESTAMP)),
        *_both_directions("priority", columns.priority, INTEGER, _typed(columns.priority.type)),
        *_both_directions("title", title_key, TEXT, _typed(columns.title.type)),
        # Nulls last in both directions: each direction has its own key (see models.todo).
        _spec("due_at", due_at_asc_key, DATETIME, _due_bound("infinity"), columns.due_at),
        _spec("-due_at", due_at_desc_key, DATETIME, _due_bound("-infinity"), columns.due_at),
    ]
}


def completed_at_for(completed: ColumnElement[bool] | bool) -> ColumnElement[Any]:
    """Keep the first completion time while completed; clear it when reopened."""
    return case((literal(completed), func.coalesce(col(Todo.completed_at), func.now())), else_=None)


class TodoRepository:
    def __init__(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id

    def _mine(self) -> ColumnElement[bool]:
        return col(Todo.user_id) == self.user_id

    def _one(self, todo_id: uuid.UUID) -> ColumnElement[bool]:
        return (col(Todo.id) == todo_id) & self._mine()

    @staticmethod
    def _at(versions: frozenset[int] | None) -> list[ColumnElement[bool]]:
        return [] if versions is None else [col(Todo.version).in_(sorted(versions))]

    async def get(self, todo_id: uuid.UUID) -> Todo | None:
        return (await self.session.exec(select(Todo).where(self._one(todo_id)))).first()

    async def page(
        self,
        conditions: Sequence[ColumnElement[bool]],
        spec: SortSpec,
        after: tuple[Any, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[tuple[Todo, Any]]:
        """Up to `limit` todos in `spec` order after the `after` position, with each row's cursor value."""
        statement = select(Todo, spec.cursor_value).where(self._mine(), *conditions)
        if after is not None:
            statement = statement.where(spec.after(*after))
        statement = statement.order_by(*spec.order_by()).limit(limit)
        return (await self.session.exec(statement)).all()

    async def count(self) -> int:
        statement = select(func.count()).select_from(Todo).where(self._mine())
        return int((await self.session.exec(statement)).one())

    async def create(self, values: dict[str, Any]) -> Todo:
        completed = bool(values.get("completed"))
        statement = (
            sa_insert(Todo)
            .values(user_id=self.user_id, completed_at=func.now() if completed else None, **values)
            .returning(Todo)
        )
        return await self._returning_one(statement)

    async def update(
        self, todo_id: uuid.UUID, values: dict[str, Any], versions: frozenset[int] | None = None
    ) -> Todo | None:
        """Apply `values` in one statement (no read-modify-write); None if not found or, when
        `versions` is given, if the row's version is not one of them."""
        assignments: dict[str, Any] = {**values, "updated_at": func.now(), "version": col(Todo.version) + 1}
        if "completed" in values:
            assignments["completed_at"] = completed_at_for(values["completed"])
        statement = (
            sa_update(Todo)
            .where(self._one(todo_id), *self._at(versions))
            .values(**assignments)
            .returning(Todo)
            .execution_options(synchronize_session=False)
        )
        return await self._returning_one_or_none(statement)

    async def delete(self, todo_id: uuid.UUID, versions: frozenset[int] | None = None) -> bool:
        statement = sa_delete(Todo).where(self._one(todo_id), *self._at(versions)).returning(col(Todo.id))
        return (await self.session.exec(statement)).first() is not None

    async def _returning_one(self, statement: Any) -> Todo:
        todo = await self._returning_one_or_none(statement)
        if todo is None:  # pragma: no cover - INSERT … RETURNING always returns its row
            raise RuntimeError("no row returned")
        return todo

    async def _returning_one_or_none(self, statement: Any) -> Todo | None:
        try:
            result = await self.session.exec(statement, execution_options={"populate_existing": True})
        except IntegrityError as exc:
            if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) == FK_LIST:
                raise ListReferenceError from None
            raise
        todo: Todo | None = result.scalars().first()
        return todo


def search(text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; LIKE wildcards in `text` are escaped (literal)."""
    return or_(
        col(Todo.title).icontains(text, autoescape=True),
        col(Todo.description).icontains(text, autoescape=True),
    )


def due_between(before: datetime | None, after: datetime | None) -> list[ColumnElement[bool]]:
    conditions = []
    if before is not None:
        conditions.append(col(Todo.due_at) < before)
    if after is not None:
        conditions.append(col(Todo.due_at) > after)
    return conditions
