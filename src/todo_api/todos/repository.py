"""Todo storage, scoped to one owner: every statement starts from `live_todos()` (the owner's
todos outside the trash; the trash itself is `todo_api.trash`).

Statements are built from the SQLModel class (`select(Todo.id, …)`, ORM-enabled `insert(Todo)`,
`update(Todo)`, `delete(Todo)`), once per shape, with a bind parameter for every value, and run
on the unit of work's SQLModel `Session`. Building a statement and deriving its cache key costs
more than running it, so they are built at import (or once per filter combination) and reused.
Pages select columns, not entities: nothing here needs the identity map.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import ColumnElement, DateTime, Integer, Text, Uuid, and_, bindparam, case, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate, Update
from sqlmodel import Session, col, exists, func, insert, or_, select, update
from sqlmodel.sql.expression import Select

from todo_api.errors import violated_constraint
from todo_api.models import Todo, TodoList, User
from todo_api.models.base import returned, sql_type, timestamp_literal
from todo_api.models.scoping import OWNER, live_lists, live_todos, the_owner
from todo_api.models.todo import due_at_asc_key, due_at_desc_key, title_key
from todo_api.pagination import (
    DATETIME,
    NULLABLE_DATETIME,
    Expression,
    IntegerKey,
    KeyCodec,
    Position,
    SortSpec,
    TextKey,
    page_params,
    select_columns,
)
from todo_api.storage.faults import Rerun
from todo_api.todos.schemas import PriorityRank
from todo_api.todos.tree import CHILDREN, HAS_CHILDREN

FK_LIST = "fk_todos_list_id_user_id_lists"
FK_PARENT = "fk_todos_parent_id_user_id_todos"
UNIQUE_POSITION = "uq_todos_user_id_list_id_parent_id_position"
LIKE_ESCAPE = "/"
TIMESTAMP = DateTime(timezone=True)


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


class TodoPageRow(NamedTuple):
    """A page row: the representation's fields (no version) and the sort key of the page's order."""

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
    sort_value: Any


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


@dataclass(frozen=True, slots=True)
class TodoFilters:
    """What a page is filtered by; unset filters (None, empty) do not apply."""

    completed: bool | None = None
    in_no_list: bool = False
    list_id: uuid.UUID | None = None
    priority: int | None = None
    tag_keys: tuple[str, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    text: str | None = None  # case-insensitive substring of title or description, matched literally
    parent_id: uuid.UUID | None = None
    top_level: bool = False
    completed_after: datetime | None = None
    completed_before: datetime | None = None

    def params(self) -> dict[str, Any]:
        """The bind parameters of the filters that apply, named as in `_FILTERS`."""
        values: dict[str, Any] = {
            "completed": self.completed,
            "list_id": self.list_id,
            "priority": self.priority,
            "tag_keys": list(self.tag_keys) or None,
            "due_before": self.due_before,
            "due_after": self.due_after,
            "q": None if self.text is None else like_pattern(self.text),
            "parent_id": self.parent_id,
            "completed_after": self.completed_after,
            "completed_before": self.completed_before,
        }
        params = {name: value for name, value in values.items() if value is not None}
        if self.in_no_list:
            params["no_list"] = None
        if self.top_level:
            params["no_parent"] = None
        return params


def _typed(kind: Any) -> Any:
    return lambda value: type_coerce(value, kind)


def _due_bound(far_end: str) -> Any:
    sentinel = timestamp_literal(far_end)
    return lambda value: func.coalesce(type_coerce(value, TIMESTAMP), sentinel)


def _spec(name: str, key: Expression, codec: KeyCodec, bound: Any, cursor_value: Expression | None = None) -> SortSpec:
    return SortSpec(
        name=name,
        descending=name.startswith("-"),
        key=key,
        id_column=col(Todo.id),
        cursor_value=key if cursor_value is None else cursor_value,
        codec=codec,
        bound=bound,
    )


def _both_directions(name: str, key: Expression, codec: KeyCodec, bound: Any) -> list[SortSpec]:
    return [_spec(name, key, codec, bound), _spec(f"-{name}", key, codec, bound)]


# What a cursor may carry back for these keys (checked before it reaches SQL).
PRIORITY_KEY = IntegerKey(min(PriorityRank), max(PriorityRank))
TITLE_KEY = TextKey(max_length=500)
POSITION_KEY = TextKey(max_length=64)
SORTS: dict[str, SortSpec] = {
    spec.name: spec
    for spec in [
        *_both_directions("created_at", col(Todo.created_at), DATETIME, _typed(TIMESTAMP)),
        *_both_directions("updated_at", col(Todo.updated_at), DATETIME, _typed(TIMESTAMP)),
        *_both_directions("priority", col(Todo.priority), PRIORITY_KEY, _typed(sql_type(Todo.priority))),
        *_both_directions("title", title_key, TITLE_KEY, _typed(Text())),
        # Nulls last in both directions: each direction has its own key (see models.todo).
        _spec("due_at", due_at_asc_key, NULLABLE_DATETIME, _due_bound("infinity"), col(Todo.due_at)),
        _spec("-due_at", due_at_desc_key, NULLABLE_DATETIME, _due_bound("-infinity"), col(Todo.due_at)),
        # One sibling group's manual order (the service always filters to one group).
        _spec("position", col(Todo.position), POSITION_KEY, _typed(sql_type(Todo.position))),
        # Completed todos only (their completion time is the key; see `_ONLY`).
        *_both_directions("completed_at", col(Todo.completed_at), DATETIME, _typed(TIMESTAMP)),
    ]
}
# Conditions a sort brings along: completion-time order is over completed todos (its partial index).
_ONLY: dict[str, list[ColumnElement[bool]]] = {
    name: [col(Todo.completed_at).is_not(None)] for name in ("completed_at", "-completed_at")
}

# What a todo's representation needs (not the owner, not tag_keys), in `TodoRead`'s field order.
# Single todos add the version (their ETag); pages have no ETags per item.
_FIELDS: list[Any] = [col(getattr(Todo, name)) for name in TodoRecord._fields if name != "version"]
_RECORD = [*_FIELDS, col(Todo.version)]
_ONE = (col(Todo.id) == bindparam("target")) & live_todos()
_GET = select(*_RECORD).where(_ONE)
_COUNT = select(func.count()).select_from(Todo).where(live_todos())
_PAGES = {name: spec.pages(_FIELDS, and_(live_todos(), *_ONLY.get(name, ()))) for name, spec in SORTS.items()}
# Filters a page can add, each on a bind parameter of the same name (`no_list` takes none).
_FILTERS: dict[str, ColumnElement[bool]] = {
    "completed": col(Todo.completed) == bindparam("completed", type_=sql_type(Todo.completed)),
    "no_list": col(Todo.list_id).is_(None),
    "list_id": col(Todo.list_id) == bindparam("list_id", type_=sql_type(Todo.list_id)),
    "priority": col(Todo.priority) == bindparam("priority", type_=sql_type(Todo.priority)),
    "tag_keys": col(Todo.tag_keys).contains(bindparam("tag_keys", type_=sql_type(Todo.tag_keys))),
    "due_before": col(Todo.due_at) < bindparam("due_before", type_=TIMESTAMP),
    "due_after": col(Todo.due_at) > bindparam("due_after", type_=TIMESTAMP),
    # Case-insensitive substring; the value comes escaped by `like_pattern`.
    "q": or_(
        col(Todo.title).icontains(bindparam("q", type_=Text), escape=LIKE_ESCAPE),
        col(Todo.description).icontains(bindparam("q", type_=Text), escape=LIKE_ESCAPE),
    ),
}
# The planner's filters (issue 15), kept apart: test_scoping combines them with the others one by one.
PLANNER_FILTERS: dict[str, ColumnElement[bool]] = {
    "parent_id": col(Todo.parent_id) == bindparam("parent_id", type_=sql_type(Todo.parent_id)),
    "no_parent": col(Todo.parent_id).is_(None),
    "completed_after": col(Todo.completed_at) > bindparam("completed_after", type_=TIMESTAMP),
    "completed_before": col(Todo.completed_at) < bindparam("completed_before", type_=TIMESTAMP),
}
_FILTERS |= PLANNER_FILTERS
# ORM-enabled DML without objects to keep in step: skip the session's synchronisation pass.
_NO_SYNC = {"synchronize_session": False}


@functools.lru_cache(maxsize=256)
def _filtered_page(sort: str, after: bool, filters: frozenset[str]) -> Any:
    statement = _PAGES[sort][after].where(*(_FILTERS[name] for name in sorted(filters)))
    if sort == "position" and "no_parent" in filters:
        # A top-level group (`parent_id IS NULL`): its columns are named in the order, as the unique
        # index (user_id, list_id, parent_id, position) has them; `IS NULL` alone does not tell the
        # planner they are constant, and it would sort the whole group (todos.positions.in_order).
        group = [col(Todo.list_id), col(Todo.parent_id)]
        statement = statement.order_by(None).order_by(*group, *SORTS[sort].order_by())
    return statement


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
        statement = _filtered_page(spec.name, after is not None, frozenset(params))
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


def like_pattern(text: str) -> str:
    """`text` for the `q` filter: LIKE's wildcards and the escape character itself match literally
    (what SQLAlchemy's `autoescape=True` does to a literal string)."""
    return text.replace(LIKE_ESCAPE, 2 * LIKE_ESCAPE).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
