"""The todo contract: what clients send and what they get back (never the table itself)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic.json_schema import SkipJsonSchema

from todo_api.fields import Patch, Text, Trim, UtcDatetime, non_blank, reject_null
from todo_api.pagination import CURSOR_MAX_LENGTH

PriorityName = Literal["none", "low", "medium", "high"]
MAX_TAGS = 20


class Priority(IntEnum):
    """Stored as a small integer so that sorting by priority is sorting by importance."""

    none = 0
    low = 1
    medium = 2
    high = 3

    @classmethod
    def of(cls, name: PriorityName) -> Priority:
        return cls[name]


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

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    completed: StrictBool = False
    due_at: UtcDatetime | None = None
    priority: PriorityName = "none"
    tags: Tags = []
    list_id: uuid.UUID | None = None


class TodoUpdate(Patch):
    """PATCH: only the fields sent change; `null` clears `due_at` or `list_id`.

    The other fields may be left out but not sent as null (the schema says so: `SkipJsonSchema`
    keeps the internal "not sent" default out of the OpenAPI document)."""

    title: Title | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    completed: StrictBool | SkipJsonSchema[None] = None
    due_at: UtcDatetime | None = None
    priority: PriorityName | SkipJsonSchema[None] = None
    tags: Tags | SkipJsonSchema[None] = None
    list_id: uuid.UUID | None = None

    _not_null = field_validator("title", "description", "completed", "priority", "tags", mode="before")(reject_null)


class TodoRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str
    completed: bool
    completed_at: datetime | None = Field(description="Set by the server when `completed` becomes true.")
    due_at: datetime | None
    priority: PriorityName
    tags: list[str]
    list_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return Priority(value).name if isinstance(value, int) else value


_READ_FIELDS = tuple(TodoRead.model_fields)
_PRIORITY_NAMES = tuple(priority.name for priority in Priority)


def todo_document(row: Any) -> dict[str, Any]:
    """`TodoRead`'s JSON object straight from a row that starts with its columns in field order, for
    pages: the same document `TodoRead.model_validate(row)` serialises to (tests/todos/
    test_documents.py compares them on stored rows), without re-validating what the table's types
    and constraints guarantee. Rows are zipped, not read by name (~1.5 µs less per row)."""
    document = dict(zip(_READ_FIELDS, row, strict=False))  # the row may carry more (a sort key)
    document["priority"] = _PRIORITY_NAMES[document["priority"]]
    return document


TodoSort = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
    "title",
    "-title",
]


class TodoQuery(BaseModel):
    """Filters for `GET /api/todos`; every filter given must match."""

    model_config = ConfigDict(extra="forbid")

    completed: bool | None = None
    list_id: uuid.UUID | Literal["none"] | None = Field(
        default=None, description="A list's id, or `none` for todos in no list."
    )
    priority: PriorityName | None = None
    tag: list[Tag] = Field(default=[], max_length=MAX_TAGS, description="Repeatable; all must match.")
    due_before: UtcDatetime | None = None
    due_after: UtcDatetime | None = None
    q: Text | None = Field(
        default=None,
        max_length=200,
        description="Case-insensitive substring of title or description; `%`, `_` and `\\\\` are literal.",
    )
    sort: TodoSort = Field(default="-created_at", description="Prefix `-` for descending; nulls sort last.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
