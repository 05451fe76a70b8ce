"""The list contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from todo_api.fields import Patch, Trim, non_blank, reject_null
from todo_api.pagination import CURSOR_MAX_LENGTH

ListName = Annotated[str, non_blank(100), Trim]


class ListCreate(BaseModel):
    """A new list. Also the body of PUT."""

    model_config = ConfigDict(extra="forbid")

    name: ListName = Field(description="Unique per user, case-insensitively.")


class ListUpdate(Patch):
    name: ListName | SkipJsonSchema[None] = None

    _not_null = field_validator("name", mode="before")(reject_null)


class ListRead(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime
    todo_count: int = Field(description="Todos in this list.")
    open_count: int = Field(description="Todos in this list not yet completed.")


ListSort = Literal["created_at", "-created_at", "name", "-name"]


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sort: ListSort = Field(default="created_at", description="Prefix `-` for descending.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
