"""Todo storage. Built with the owner's id; every statement starts from the owner's rows.

Statements are SQLAlchemy expressions over the SQLModel table (`Todo.__table__`), executed on the
request's connection and returning plain rows: the API never hands out table objects, so an ORM
identity map would only cost time on every request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Row,
    Select,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from todo_api.errors import violated_constraint
from todo_api.models.todo import due_at_asc_key, due_at_desc_key, title_key, todos_table
from todo_api.pagination import DATETIME, INTEGER, TEXT, KeyCodec, SortSpec
from todo_api.todos.schemas import TodoRead

FK_LIST = "fk_todos_list_id_user_id_lists"


class ListReferenceError(Exception):
    """The database refused a `list_id` that is not one of the owner's lists."""


# A sort's `bound` receives the cursor's bind parameter (see `_PAGES`) and gives it the key's type.
def _typed(kind: Any) -> Any:
    return lambda value: type_coerce(value, kind)


def _due_bound(far_end: str) -> Any:
    sentinel: ColumnElement[Any] = literal_column(f"'{far_end}'::timestamp with time zone")
    return lambda value: func.coalesce(type_coerce(value, DateTime(timezone=True)), sentinel)


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


def completed_at_for(completed: bool) -> ColumnElement[Any]:
    """Keep the first completion time while completed; clear it when reopened."""
    return case((literal(completed), func.coalesce(columns.completed_at, func.now())), else_=None)


# Statements on the hot path are built once, with bind parameters; each still starts from the
# owner's rows (`user_id = :user_id`).
_MINE = columns.user_id == bindparam("owner")
_ONE = (columns.id == bindparam("target")) & _MINE
# What a todo's representation needs: not the owner, not tag_keys. Single todos add the version
# (their ETag); pages have no ETags per item.
_FIELDS: list[ColumnElement[Any]] = [columns[name] for name in TodoRead.model_fields]
_READ = [*_FIELDS, columns.version]
_GET = select(*_READ).where(_ONE)
_COUNT = select(func.count()).select_from(todos_table).where(_MINE)


def _page(spec: SortSpec, after: bool) -> Select[*tuple[Any, ...]]:
    """A page in `spec` order (after a cursor position, or from the start); every value is a
    bind parameter, so the statement is built once per sort and filters are added on top."""
    statement = select(*_FIELDS, spec.cursor_value.label("sort_value")).where(_MINE)
    if after:
        statement = statement.where(spec.after(bindparam("after_value"), bindparam("after_id", type_=columns.id.type)))
    return statement.order_by(*spec.order_by()).limit(bindparam("limit", type_=Integer))


_PAGES = {(name, after): _page(spec, after) for name, spec in SORTS.items() for after in (False, True)}
# Values come as execute() parameters: the statement (and its compiled form) is reused.
_INSERT = insert(todos_table).returning(*_READ)
_INSERT_COMPLETED = insert(todos_table).values(completed_at=func.now()).returning(*_READ)


def _at(versions: frozenset[int] | None) -> list[ColumnElement[bool]]:
    return [] if versions is None else [columns.version.in_(sorted(versions))]


class TodoRepository:
    def __init__(self, db: Connection, user_id: uuid.UUID) -> None:
        self.db = db
        self.user_id = user_id
        self._owner = {"owner": user_id}

    def get(self, todo_id: uuid.UUID) -> Row[Any] | None:
        return self.db.execute(_GET, {**self._owner, "target": todo_id}).first()

    def page(
        self,
        conditions: Sequence[ColumnElement[bool]],
        spec: SortSpec,
        after: tuple[Any, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Up to `limit` todos in `spec` order after the `after` position; each row ends with its
        cursor value (`sort_value`)."""
        params: dict[str, Any] = {**self._owner, "limit": limit}
        if after is not None:
            params.update(after_value=after[0], after_id=after[1])
        statement = _PAGES[spec.name, after is not None]
        if conditions:
            statement = statement.where(*conditions)
        return self.db.execute(statement, params).all()

    def count(self) -> int:
        return int(self.db.execute(_COUNT, self._owner).scalar_one())

    def create(self, values: dict[str, Any]) -> Row[Any]:
        statement = _INSERT_COMPLETED if values.get("completed") else _INSERT
        row = self._returning(statement, {**values, "user_id": self.user_id})
        if row is None:  # pragma: no cover - INSERT … RETURNING always returns its row
            raise RuntimeError("no row returned")
        return row

    def update(
        self, todo_id: uuid.UUID, values: dict[str, Any], versions: frozenset[int] | None = None
    ) -> Row[Any] | None:
        """Apply `values` in one statement (no read-modify-write); None if not found or, when
        `versions` is given, if the row's version is not one of them."""
        assignments: dict[str, Any] = {**values, "updated_at": func.now(), "version": columns.version + 1}
        if "completed" in values:
            assignments["completed_at"] = completed_at_for(values["completed"])
        statement = update(todos_table).where(_ONE, *_at(versions)).values(**assignments).returning(*_READ)
        return self._returning(statement, {**self._owner, "target": todo_id})

    def delete(self, todo_id: uuid.UUID, versions: frozenset[int] | None = None) -> bool:
        statement = delete(todos_table).where(_ONE, *_at(versions)).returning(columns.id)
        return self.db.execute(statement, {**self._owner, "target": todo_id}).first() is not None

    def _returning(self, statement: Any, params: dict[str, Any]) -> Row[Any] | None:
        try:
            return self.db.execute(statement, params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == FK_LIST:
                raise ListReferenceError from None
            raise


def search(text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match; LIKE wildcards in `text` are escaped (literal)."""
    return or_(
        columns.title.icontains(text, autoescape=True),
        columns.description.icontains(text, autoescape=True),
    )


def due_between(before: datetime | None, after: datetime | None) -> list[ColumnElement[bool]]:
    conditions = []
    if before is not None:
        conditions.append(columns.due_at < before)
    if after is not None:
        conditions.append(columns.due_at > after)
    return conditions
