"""The list contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic.json_schema import SkipJsonSchema

from todo_api.fields import ApiEnum, Patch, Trim, non_blank, reject_null
from todo_api.pagination import CURSOR_MAX_LENGTH, Page

ListName = Annotated[str, non_blank(100), Trim]


class ListCreate(BaseModel):
    """A new list. Also the body of PUT."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Groceries"}]})

    name: ListName = Field(description="1–100 characters, trimmed; unique per user, case-insensitively.")


class ListMove(BaseModel):
    """Where to put a list: right after `after_id` (null or left out: first)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"after_id": "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a0f"}]}
    )

    after_id: uuid.UUID | None = Field(default=None, description="The list to follow (null or left out: first).")


class ListUpdate(Patch):
    """PATCH: only the fields sent change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Weekly groceries"}]})

    name: ListName | SkipJsonSchema[None] = None

    _not_null = field_validator("name", mode="before")(reject_null)


EXAMPLE_LIST: dict[str, JsonValue] = {
    "id": "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a0f",
    "name": "Groceries",
    "created_at": "2030-01-30T12:00:00Z",
    "updated_at": "2030-01-30T12:00:00Z",
    "todo_count": 3,
    "open_count": 2,
    "position": "a0",
}


class ListRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_LIST]})

    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    todo_count: int = Field(description="Todos in this list.")
    open_count: int = Field(description="Todos in this list not yet completed.")
    position: str = Field(
        description="Read-only: its byte order is the user's order of lists; change it with "
        "`POST /api/lists/{list_id}/move`.",
        examples=["a0"],
    )


class ListPage(Page[ListRead]):
    """One page of lists; follow `next_cursor` for the next."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [EXAMPLE_LIST], "next_cursor": "AXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gU"}]}
    )


class ListSort(ApiEnum):
    """The order of a list page: a field, ascending, or prefixed `-` for descending; ties by id."""

    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    NAME = "name"
    NAME_DESC = "-name"
    POSITION = "position"


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sort: ListSort = Field(
        default=ListSort.CREATED_AT, description="Prefix `-` for descending; `position`: the user's order."
    )
    limit: int = Field(default=50, ge=1, le=200, description="Lists per page.")
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
