"""The batch contract: a queue of commands, one result per command."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from todo_api.errors import ErrorCode
from todo_api.fields import ApiEnum
from todo_api.http.responses import CODE_DESCRIPTION
from todo_api.lists.schemas import EXAMPLE_LIST, ListRead
from todo_api.sync.schemas import EXAMPLE_SYNC_TOKEN
from todo_api.sync.token import SYNC_TOKEN_MAX_LENGTH
from todo_api.todos.schemas import EXAMPLE_TODO, TodoRead

MAX_COMMANDS = 100
BATCH_MAX_BODY_BYTES = 1024 * 1024  # a full batch of large todos fits; other routes keep MAX_BODY_BYTES
TempId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class CommandType(ApiEnum):
    """What a command does: the REST route it stands for."""

    TODO_ADD = "todo_add"
    TODO_UPDATE = "todo_update"
    TODO_DELETE = "todo_delete"
    TODO_RESTORE = "todo_restore"
    TODO_MOVE = "todo_move"
    LIST_ADD = "list_add"
    LIST_UPDATE = "list_update"
    LIST_DELETE = "list_delete"
    LIST_RESTORE = "list_restore"
    LIST_MOVE = "list_move"


ADDS = frozenset({CommandType.TODO_ADD, CommandType.LIST_ADD})


class Command(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "todo_add",
                    "uuid": "3c1e4b0a-5d6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "temp_id": "tmp-1",
                    "args": {"title": "Buy milk", "list_id": "tmp-list"},
                },
                {
                    "type": "todo_move",
                    "uuid": "7e2d4c1b-8a9f-4b0c-9d1e-2f3a4b5c6d7e",
                    "args": {"id": "tmp-1", "parent_id": "tmp-parent", "after_id": None},
                },
            ]
        },
    )

    type: CommandType
    uuid: UUID = Field(description="Names the command: one already applied is not applied again.")
    temp_id: TempId | None = Field(
        default=None,
        description="`*_add` only (else 422 for the command), unique in the batch: later commands may use it "
        "as `id`, `list_id`, `parent_id` or `after_id`.",
    )
    args: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="The REST route's body; `id` names an existing resource (or a `temp_id`); "
        "`if_match` (an ETag) or, for todos, `if_version` (its number) makes a write conditional (412); "
        "with `REQUIRE_IF_MATCH` on, an update or delete that sends neither is refused (428).",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "commands": [
                        {
                            "type": "list_add",
                            "uuid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                            "temp_id": "tmp-list",
                            "args": {"name": "Groceries"},
                        },
                        {
                            "type": "todo_add",
                            "uuid": "3c1e4b0a-5d6f-4a7b-8c9d-0e1f2a3b4c5d",
                            "temp_id": "tmp-1",
                            "args": {"title": "Buy milk", "list_id": "tmp-list"},
                        },
                    ],
                }
            ]
        },
    )

    commands: list[Command] = Field(min_length=1, max_length=MAX_COMMANDS, description="Applied in order.")
    sync_token: str | None = Field(
        default=None,
        max_length=SYNC_TOKEN_MAX_LENGTH,
        description="Your current sync token: the response's `sync_token` then continues it.",
    )


class CommandError(BaseModel):
    """The error body the REST route would have answered."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "Not found", "code": "not_found"}]})

    detail: str | list[dict[str, Any]] = Field(description="A message, or for 422 the list of problems.")
    code: ErrorCode = Field(description=CODE_DESCRIPTION)


class CommandResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"uuid": "3c1e4b0a-5d6f-4a7b-8c9d-0e1f2a3b4c5d", "status": 201, "resource": EXAMPLE_TODO},
                {"uuid": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "status": 200, "resource": EXAMPLE_LIST},
            ]
        }
    )

    uuid: UUID
    status: int = Field(description="The status the REST route would have answered.", examples=[201])
    resource: TodoRead | ListRead | None = Field(default=None, description="For 200 and 201.")
    error: CommandError | None = Field(default=None, description="For 4xx.")


class BatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"uuid": "3c1e4b0a-5d6f-4a7b-8c9d-0e1f2a3b4c5d", "status": 201, "resource": EXAMPLE_TODO}
                    ],
                    "temp_id_mapping": {"tmp-1": EXAMPLE_TODO["id"]},
                    "sync_token": EXAMPLE_SYNC_TOKEN,
                }
            ]
        }
    )

    results: list[CommandResult] = Field(description="One per command, in order.")
    temp_id_mapping: dict[str, UUID] = Field(description="Each `temp_id` → the id it was given.")
    sync_token: str = Field(description="Continues the request's `sync_token` (or starts at this batch).")
