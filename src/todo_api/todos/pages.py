"""Which of the owner's todos a page holds, and in what order: the filters, the sorts, and the
keyset page statement of each combination (`TodoRepository.page` runs it).

Like every statement of the repository, a page is built from the SQLModel class once per shape
(sort, direction, set of filters), with a bind parameter for every value, and starts from
`live_todos()`. Pages select columns, not entities: nothing here needs the identity map.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, DateTime, Text, and_, bindparam, type_coerce
from sqlmodel import col, func, or_

from todo_api.models import Todo
from todo_api.models.base import sql_type, timestamp_literal
from todo_api.models.scoping import live_todos
from todo_api.models.todo import due_at_asc_key, due_at_desc_key, title_key
from todo_api.pagination import DATETIME, NULLABLE_DATETIME, Expression, IntegerKey, KeyCodec, SortSpec, TextKey
from todo_api.todos.schemas import PriorityRank

LIKE_ESCAPE = "/"
TIMESTAMP = DateTime(timezone=True)


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


# A todo's representation (`TodoRead`'s fields, in order); pages have no ETags, so no version.
COLUMNS: list[Any] = [col(getattr(Todo, name)) for name in TodoPageRow._fields if name != "sort_value"]


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
        """The bind parameters of the filters that apply, named as in `FILTERS`."""
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
_PAGES = {name: spec.pages(COLUMNS, and_(live_todos(), *_ONLY.get(name, ()))) for name, spec in SORTS.items()}
# Filters a page can add, each on a bind parameter of the same name (`no_list` takes none).
FILTERS: dict[str, ColumnElement[bool]] = {
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
FILTERS |= PLANNER_FILTERS


@functools.lru_cache(maxsize=256)
def page_statement(sort: str, after: bool, filters: frozenset[str]) -> Any:
    """The page statement of `sort` (after a cursor's position or from the start) with `filters`
    (names of `FILTERS`, `TodoFilters.params`), built once per combination."""
    statement = _PAGES[sort][after].where(*(FILTERS[name] for name in sorted(filters)))
    if sort == "position" and "no_parent" in filters:
        # A top-level group (`parent_id IS NULL`): its columns are named in the order, as the unique
        # index (user_id, list_id, parent_id, position) has them; `IS NULL` alone does not tell the
        # planner they are constant, and it would sort the whole group (todos.positions.in_order).
        group = [col(Todo.list_id), col(Todo.parent_id)]
        statement = statement.order_by(None).order_by(*group, *SORTS[sort].order_by())
    return statement


def like_pattern(text: str) -> str:
    """`text` for the `q` filter: LIKE's wildcards and the escape character itself match literally
    (what SQLAlchemy's `autoescape=True` does to a literal string)."""
    return text.replace(LIKE_ESCAPE, 2 * LIKE_ESCAPE).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
