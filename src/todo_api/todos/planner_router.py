"""Planner routes on todos (issue 15): manual order and completion history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from todo_api.deps import CurrentUserDep, CursorSealerDep
from todo_api.http.responses import NOT_FOUND, TAGGED, json_bytes_response, representation
from todo_api.http.routing import StrictJsonRoute
from todo_api.todos import completions, moves
from todo_api.todos.planner_fields import CompletionPage, CompletionQuery, TodoMove
from todo_api.todos.schemas import TodoRead

router = APIRouter(prefix="/todos", tags=["todos"], route_class=StrictJsonRoute)
TodoId = Annotated[uuid.UUID, Path(description="The todo's `id`.")]


@router.post("/{todo_id}/move", response_model=TodoRead, responses={**TAGGED, **NOT_FOUND})
async def move_todo(todo_id: TodoId, body: TodoMove, user: CurrentUserDep) -> Response:
    """Put a todo right after `after_id` (null: first) among the children of `parent_id` in `list_id`."""
    return representation(await user.run(moves.move_todo, todo_id, body))


@router.get("/{todo_id}/completions", response_model=CompletionPage, responses={**NOT_FOUND})
async def list_completions(
    todo_id: TodoId, query: Annotated[CompletionQuery, Query()], user: CurrentUserDep, cursors: CursorSealerDep
) -> Response:
    """When the todo was completed (each occurrence of a recurring todo), newest first, one page at a time."""
    return json_bytes_response((await user.read(completions.list_completions, todo_id, query, cursors)).to_json())
