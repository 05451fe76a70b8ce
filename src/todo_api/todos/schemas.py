"""The todo contract: what clients send and what they get back (never the table itself)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, StrictBool, field_validator
from pydantic.json_schema import SkipJsonSchema

from todo_api.fields import ApiEnum, Patch, Text, Trim, UtcDatetime, non_blank, reject_null
from todo_api.pagination import CURSOR_MAX_LENGTH, Page
from todo_api.planner.reminders import Reminders
from todo_api.todos.planner_fields import (
    DEFAULT_ZONE,
    PARENT_DESCRIPTION,
    REMINDERS_DESCRIPTION,
    Recurrence,
    TimeZone,
)

MAX_TAGS = 20
# A due date in the examples: a recurrence or a `before_due` reminder in the same example needs one.
EXAMPLE_DUE = "2030-01-31T09:00:00+01:00"


class Priority(ApiEnum):
    """How important a todo is (sorting by `priority` sorts by importance: `none` < … < `high`)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class PriorityRank(IntEnum):
    """A priority as stored: a small integer, so that sorting by priority is sorting by importance."""

    none = 0
    low = 1
    medium = 2
    high = 3

    @classmethod
    def of(cls, priority: Priority | str) -> PriorityRank:
        return cls[str(priority)]


Title = Annotated[str, non_blank(500), Trim]
Description = Annotated[Text, Field(max_length=10_000)]
Tag = Annotated[str, non_blank(50), Trim]


def tag_key(tag: str) -> str:
    """Tags compare case-insensitively (Unicode case folding)."""
    return tag.casefold()


def _dedupe_tags(tags: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for tag in tags:
        if (key := tag_key(tag)) not in seen:
            seen.add(key)
            unique.append(tag)
    return unique


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_dedupe_tags)]


class TodoCreate(BaseModel):
    """A new todo. Also the body of PUT: fields left out take their defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"title": "Buy milk"},
                {"title": "File taxes", "due_at": "2030-04-30T17:00:00+02:00", "priority": "high", "tags": ["home"]},
            ]
        },
    )

    title: Title = Field(description="1–500 characters, trimmed.")
    description: Description = ""
    completed: StrictBool = False
    due_at: UtcDatetime | None = Field(
        default=None, description="RFC 3339 with an offset; returned in UTC.", examples=[EXAMPLE_DUE]
    )
    priority: Priority = Priority.NONE
    tags: Tags = Field(default=[], description="Trimmed; duplicates (case-insensitive) are dropped, order kept.")
    list_id: uuid.UUID | None = Field(default=None, description="One of the user's lists, or null.")
    parent_id: uuid.UUID | None = Field(default=None, description=PARENT_DESCRIPTION)
    recurrence: Recurrence | None = None
    time_zone: TimeZone = DEFAULT_ZONE
    reminders: Reminders = Field(default=[], description=REMINDERS_DESCRIPTION)


class TodoUpdate(Patch):
    """PATCH: only the fields sent change; `null` clears `due_at` or `list_id`.

    The other fields may be left out but not sent as null (the schema says so: `SkipJsonSchema`
    keeps the internal "not sent" default out of the OpenAPI document)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"completed": True}, {"due_at": "2030-02-01T09:00:00Z", "priority": "low"}]}
    )

    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    completed: StrictBool | SkipJsonSchema[None] = None
    due_at: UtcDatetime | None = Field(default=None, examples=[EXAMPLE_DUE])
    priority: Priority | SkipJsonSchema[None] = None
    tags: Tags | SkipJsonSchema[None] = None
    list_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = Field(default=None, description=PARENT_DESCRIPTION)
    recurrence: Recurrence | None = None
    time_zone: TimeZone | SkipJsonSchema[None] = None
    reminders: Reminders | SkipJsonSchema[None] = Field(default=None, description=REMINDERS_DESCRIPTION)

    _not_null = field_validator(
        "title", "description", "completed", "priority", "tags", "time_zone", "reminders", mode="before"
    )(reject_null)


# Examples hold no nulls: FastAPI leaves null values out of the whole document, examples included.
EXAMPLE_TODO: dict[str, JsonValue] = {
    "id": "0b6a1f9e-3c2d-4e5f-8a7b-9c0d1e2f3a4b",
    "title": "Buy milk",
    "description": "Oat milk, 2 l",
    "completed": True,
    "completed_at": "2030-01-31T07:45:00Z",
    "due_at": "2030-01-31T08:00:00Z",
    "priority": "high",
    "tags": ["home"],
    "list_id": "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a0f",
    "created_at": "2030-01-30T12:00:00Z",
    "updated_at": "2030-01-31T07:45:00Z",
    "parent_id": "5e4d3c2b-1a0f-4d8c-b7a6-7d3c2b1a0f9e",
    "position": "a0V",
    "recurrence": "FREQ=WEEKLY;BYDAY=MO",
    "time_zone": "Europe/Berlin",
    "reminders": [{"before_due": "PT15M"}],
}
EXAMPLE_CURSOR = "AXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gU"


class TodoRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLE_TODO]})

    id: uuid.UUID
    title: str
    description: str
    completed: bool
    completed_at: datetime | None = Field(description="Set by the server when `completed` becomes true.")
    due_at: datetime | None
    priority: Priority
    tags: list[str]
    list_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    parent_id: uuid.UUID | None = Field(
        description="The parent todo, or null for a top-level todo.", examples=["5e4d3c2b-1a0f-4d8c-b7a6-7d3c2b1a0f9e"]
    )
    position: str = Field(
        description="Read-only: its byte order is the user's order among the todo's siblings (same list and "
        "parent); change it with `POST /api/todos/{todo_id}/move`.",
        examples=["a0V"],
    )
    recurrence: str | None = Field(
        description="The RRULE (canonical form), or null.", examples=["FREQ=WEEKLY;BYDAY=MO"]
    )
    time_zone: str = Field(
        description="The IANA time zone of the recurrence's wall-clock time.", examples=["Europe/Berlin"]
    )
    reminders: Reminders = Field(description=REMINDERS_DESCRIPTION)

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return PriorityRank(value).name if isinstance(value, int) else value


class TodoPage(Page[TodoRead]):
    """One page of todos; follow `next_cursor` for the next."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_TODO], "next_cursor": EXAMPLE_CURSOR}]}
    )


_READ_FIELDS = tuple(TodoRead.model_fields)
_PRIORITY_NAMES = tuple(priority.name for priority in PriorityRank)


def todo_document(row: Any) -> dict[str, Any]:
    """`TodoRead`'s JSON object straight from a row that starts with its columns in field order, for
    pages: the same document `TodoRead.model_validate(row)` serialises to (tests/todos/
    test_documents.py compares them on stored rows), without re-validating what the table's types
    and constraints guarantee. Rows are zipped, not read by name (~1.5 µs less per row)."""
    document = dict(zip(_READ_FIELDS, row, strict=False))  # the row may carry more (a sort key)
    document["priority"] = _PRIORITY_NAMES[document["priority"]]
    return document


class TodoSort(ApiEnum):
    """The order of a todo page: a field, ascending, or prefixed `-` for descending; nulls last, ties by id."""

    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"
    TITLE = "title"
    TITLE_DESC = "-title"
    POSITION = "position"
    COMPLETED_AT = "completed_at"
    COMPLETED_AT_DESC = "-completed_at"


class TodoQuery(BaseModel):
    """Filters for `GET /api/todos`; every filter given must match."""

    model_config = ConfigDict(extra="forbid")

    completed: bool | None = Field(default=None, description="Only completed (`true`) or open (`false`) todos.")
    list_id: uuid.UUID | Literal["none"] | None = Field(
        default=None, description="A list's id, or `none` for todos in no list."
    )
    priority: Priority | None = Field(default=None, description="Only todos of this priority.")
    tag: list[Tag] = Field(default=[], max_length=MAX_TAGS, description="Repeatable; all must match.")
    due_before: UtcDatetime | None = Field(default=None, description="Only todos due before this time (RFC 3339).")
    due_after: UtcDatetime | None = Field(default=None, description="Only todos due after this time (RFC 3339).")
    parent_id: uuid.UUID | Literal["none"] | None = Field(
        default=None, description="A todo's id (its subtasks), or `none` for top-level todos."
    )
    completed_after: UtcDatetime | None = Field(
        default=None, description="Only todos completed after this time (RFC 3339)."
    )
    completed_before: UtcDatetime | None = Field(
        default=None, description="Only todos completed before this time (RFC 3339)."
    )
    q: Text | None = Field(
        default=None,
        max_length=200,
        description="Case-insensitive substring of title or description; `%`, `_` and `\\\\` are literal.",
    )
    sort: TodoSort = Field(
        default=TodoSort.CREATED_AT_DESC,
        description="Prefix `-` for descending; nulls sort last. `position`: the user's order of one sibling "
        "group (`parent_id`, else top-level todos of `list_id`, else of no list); `completed_at`: completed "
        "todos only.",
    )
    limit: int = Field(default=50, ge=1, le=200, description="Todos per page.")
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
