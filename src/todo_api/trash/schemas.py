"""The trash contract: what a trash page holds."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from todo_api.fields import ApiEnum
from todo_api.lists.schemas import EXAMPLE_LIST, ListRead
from todo_api.pagination import CURSOR_MAX_LENGTH
from todo_api.todos.schemas import EXAMPLE_CURSOR, EXAMPLE_TODO, TodoRead


class ResourceKind(ApiEnum):
    """What a trash item or a sync change is."""

    TODO = "todo"
    LIST = "list"


EXAMPLE_ITEM = {
    "kind": "todo",
    "id": EXAMPLE_TODO["id"],
    "deleted_at": "2030-02-01T10:00:00Z",
    "resource": EXAMPLE_TODO,
}


class TrashItem(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_ITEM]})

    kind: ResourceKind
    id: uuid.UUID = Field(description="The todo's or list's id: `POST /api/trash/{id}/restore` brings it back.")
    deleted_at: datetime = Field(description="When it was deleted; it is purged TRASH_RETENTION_DAYS later.")
    resource: TodoRead | ListRead = Field(
        description="The resource as it was; a list's counts are the todos it took with it (they come back with it)."
    )


class TrashPage(BaseModel):
    """One page of the trash, newest deletion first; follow `next_cursor` for the next."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        EXAMPLE_ITEM,
                        {
                            "kind": "list",
                            "id": EXAMPLE_LIST["id"],
                            "deleted_at": "2030-02-01T09:00:00Z",
                            "resource": EXAMPLE_LIST,
                        },
                    ],
                    "next_cursor": EXAMPLE_CURSOR,
                }
            ]
        }
    )

    items: list[TrashItem]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class TrashQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200, description="Items per page.")
    cursor: str | None = Field(
        default=None, max_length=CURSOR_MAX_LENGTH, description="`next_cursor` of the previous page."
    )
