"""Todo storage. Built with the owner's id; every statement starts from the owner's rows.

Statements are SQLAlchemy expressions over the SQLModel table (`Todo.__table__`), executed on the
request's connection and returning plain rows: the API never hands out table objects, so an ORM
identity map would only cost time on every request.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Row,
    Select,
    Text,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
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
from todo_api.models.todo import due_at_asc_key, due_at_desc_key, title_key, todos_table
from todo_api.pagination import DATETIME, NULLABLE_DATETIME, IntegerKey, KeyCodec, SortSpec, TextKey, page_params
from todo_api.todos.schemas import Priority, TodoRead

FK_LIST = "fk_todos_list_id_user_id_lists"
LIKE_ESCAPE = "/"


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
# What a cursor may carry back for these keys (checked before it reaches SQL).
PRIORITY_KEY = IntegerKey(min(Priority), max(Priority))
TITLE_KEY = TextKey(max_length=500)
SORTS: dict[str, SortSpec] = {
    spec.name: spec
    for spec in [
        *_both_directions("created_at", columns.created_at, DATETIME, _typed(TIMESTAMP)),
        *_both_directions("updated_at", columns.updated_at, DATETIME, _typed(TIMESTAMP)),
        *_both_directions("priority", columns.priority, PRIORITY_KEY, _typed(columns.priority.type)),
        *_both_directions("title", title_key, TITLE_KEY, _typed(columns.title.type)),
        # Nulls last in both directions: each direction has its own key (see models.todo).
        _spec("due_at", due_at_asc_key, NULLABLE_DATETIME, _due_bound("infinity"), columns.due_at),
        _spec("-due_at", due_at_desc_key, NULLABLE_DATETIME, _due_bound("-infinity"), columns.due_at),
    ]
}


def completed_at_for(completed: ColumnElement[bool]) -> ColumnElement[Any]:
    """Keep the first completion time while completed; clear it when reopened."""
    return case((completed, func.coalesce(columns.completed_at, func.now())), else_=None)


# Statements are built once per shape, with bind parameters for every value, and reused: building
# one and deriving its cache key costs more than running it (an UPDATE … RETURNING: ~150 µs).
# Each still starts from the owner's rows (`user_id = :owner`).
_MINE = columns.user_id == bindparam("owner")
_ONE = (columns.id == bindparam("target")) & _MINE
# What a todo's representation needs: not the owner, not tag_keys. Single todos add the version
# (their ETag); pages have no ETags per item.
_FIELDS: list[ColumnElement[Any]] = [columns[name] for name in TodoRead.model_fields]
_READ = [*_FIELDS, columns.version]
_GET = select(*_READ).where(_ONE)
_COUNT = select(func.count()).select_from(todos_table).where(_MINE)


_PAGES = {name: spec.pages(_FIELDS, _MINE) for name, spec in SORTS.items()}
# Filters a page can add, each on a bind parameter of the same name (`no_list` takes none).
_FILTERS: dict[str, ColumnElement[bool]] = {
    "completed": columns.completed == bindparam("completed", type_=columns.completed.type),
    "no_list": columns.list_id.is_(None),
    "list_id": columns.list_id == bindparam("list_id", type_=columns.list_id.type),
    "priority": columns.priority == bindparam("priority", type_=columns.priority.type),
    "tag_keys": columns.tag_keys.contains(bindparam("tag_keys", type_=columns.tag_keys.type)),
    "due_before": columns.due_at < bindparam("due_before", type_=TIMESTAMP),
    "due_after": columns.due_at > bindparam("due_after", type_=TIMESTAMP),
    # Case-insensitive substring; the value comes escaped by `like_pattern`.
    "q": or_(
        columns.title.icontains(bindparam("q", type_=Text), escape=LIKE_ESCAPE),
        columns.description.icontains(bindparam("q", type_=Text), escape=LIKE_ESCAPE),
    ),
}


@functools.lru_cache(maxsize=256)
def _filtered_page(sort: str, after: bool, filters: frozenset[str]) -> Select[*tuple[Any, ...]]:
    return _PAGES[sort][after].where(*(_FILTERS[name] for name in sorted(filters)))


_INSERT = insert(todos_table).returning(*_READ)
_INSERT_COMPLETED = insert(todos_table).values(completed_at=func.now()).returning(*_READ)
_IF_VERSION = columns.version.in_(bindparam("versions", expanding=True))
_DELETE = {
    conditional: delete(todos_table).where(_ONE, *([_IF_VERSION] if conditional else [])).returning(columns.id)
    for conditional in (False, True)
}


@functools.lru_cache(maxsize=256)
def _update(fields: frozenset[str], conditional: bool) -> Executable:
    """SET each of `fields` from `:new_<field>` (and the completion time with `completed`)."""
    assignments = versioned_changes(todos_table, fields)
    if "completed" in fields:
        assignments["completed_at"] = completed_at_for(assignments["completed"])
    where = [_ONE, _IF_VERSION] if conditional else [_ONE]
    return update(todos_table).where(*where).values(assignments).returning(*_READ)


def _versions(versions: frozenset[int] | None) -> dict[str, Any]:
    return {} if versions is None else {"versions": sorted(versions)}


class TodoRepository:
    def __init__(self, db: Connection, user_id: uuid.UUID) -> None:
        self.db = db
        self.user_id = user_id
        self._owner = {"owner": user_id}

    def get(self, todo_id: uuid.UUID) -> Row[Any] | None:
        return self.db.execute(_GET, {**self._owner, "target": todo_id}).first()

    def page(
        self,
        filters: Mapping[str, Any],
        spec: SortSpec,
        after: tuple[Any, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Up to `limit` todos matching every filter (named as in `_FILTERS`, with their values), in
        `spec` order after the `after` position; each row ends with its cursor value
        (`sort_value`)."""
        params = {**filters, **self._owner, **page_params(after, limit)}
        statement = _filtered_page(spec.name, after is not None, frozenset(filters))
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
        params = {**new_values(values), **self._owner, "target": todo_id, **_versions(versions)}
        return self._returning(_update(frozenset(values), versions is not None), params)

    def delete(self, todo_id: uuid.UUID, versions: frozenset[int] | None = None) -> bool:
        statement = _DELETE[versions is not None]
        return self.db.execute(statement, {**self._owner, "target": todo_id, **_versions(versions)}).first() is not None

    def _returning(self, statement: Any, params: dict[str, Any]) -> Row[Any] | None:
        try:
            return self.db.execute(statement, params).first()
        except IntegrityError as exc:
            if violated_constraint(exc) == FK_LIST:
                raise ListReferenceError from None
            raise


def like_pattern(text: str) -> str:
    """`text` for the `q` filter: LIKE's wildcards and the escape character itself match literally
    (what SQLAlchemy's `autoescape=True` does to a literal string)."""
    return text.replace(LIKE_ESCAPE, 2 * LIKE_ESCAPE).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
