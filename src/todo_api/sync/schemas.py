"""The sync contract."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from todo_api.lists.schemas import EXAMPLE_LIST, ListRead
from todo_api.sync.token import SYNC_TOKEN_MAX_LENGTH
from todo_api.todos.schemas import EXAMPLE_TODO, TodoRead

MAX_SYNC_LIMIT = 1000
EXAMPLE_SYNC_TOKEN = "AZ4kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gUAXb3kQ9m0cT2yV8nR4sL6wP1eZ5hJ7gU"  # noqa: S105 (an example)


class SyncQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sync_token: str | None = Field(
        default=None,
        max_length=SYNC_TOKEN_MAX_LENGTH,
        description="The `sync_token` of your last sync (or batch); leave it out for a full sync.",
    )
    limit: int = Field(
        default=500,
        ge=1,
        le=MAX_SYNC_LIMIT,
        description="At most this many resources (changed and deleted) per response; more: `has_more`.",
    )


class Deleted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"todos": [EXAMPLE_TODO["id"]], "lists": [EXAMPLE_LIST["id"]]}]}
    )

    todos: list[uuid.UUID] = Field(description="Todos deleted (trashed or purged): drop them from the local copy.")
    lists: list[uuid.UUID] = Field(description="Lists deleted (trashed or purged), with their todos.")


EXAMPLE_SYNC: dict[str, JsonValue] = {
    "todos": [EXAMPLE_TODO],
    "lists": [EXAMPLE_LIST],
    "deleted": {"todos": ["5f0e9d8c-7b6a-4c5d-9e8f-7a6b5c4d3e2f"], "lists": []},
    "sync_token": EXAMPLE_SYNC_TOKEN,
    "has_more": False,
}


class SyncResponse(BaseModel):
    """What changed since the token: resources whole, deletions as ids."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SYNC]})

    todos: list[TodoRead] = Field(description="Created, updated, completed or restored todos, whole.")
    lists: list[ListRead] = Field(description="Created, renamed or restored lists, and lists whose counts changed.")
    deleted: Deleted
    sync_token: str = Field(description="Send it as `sync_token` next time (at once when `has_more`).")
    has_more: bool = Field(description="`true`: more changes are waiting; call again at once with `sync_token`.")
