from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from todo_api.deps import CurrentUserDep, CursorSealerDep, TodoLimitDep
from todo_api.http.conditional import IF_MATCH, IF_NONE_MATCH, IfNoneMatchHeader, Precondition
from todo_api.http.responses import (
    CREATED,
    IN_FLIGHT,
    NOT_FOUND,
    NOT_MODIFIED,
    PRECONDITION,
    QUOTA,
    TAGGED,
    cached_or,
    conflicts,
    json_bytes_response,
    representation,
)
from todo_api.http.routing import StrictJsonRoute
from todo_api.idempotency import IdempotencyKeyHeader, respond_created
from todo_api.todos import service
from todo_api.todos.schemas import TodoCreate, TodoPage, TodoQuery, TodoRead, TodoUpdate

router = APIRouter(prefix="/todos", tags=["todos"], route_class=StrictJsonRoute)
IfMatchDep = Annotated[Precondition[int] | None, Depends(service.ETAG.if_match)]
TodoId = Annotated[uuid.UUID, Path(description="The todo's `id`.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TodoRead,
    responses={**CREATED, **conflicts(QUOTA, IN_FLIGHT)},
)
async def create_todo(
    body: TodoCreate,
    user: CurrentUserDep,
    limit: TodoLimitDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Create a todo. `Location` names it; send `Idempotency-Key` to retry safely."""
    create = partial(service.create_todo, data=body, limit=limit)
    return await respond_created(request, user, idempotency_key, body, create, ("read_todo", "todo_id"))


@router.get("", response_model=TodoPage)
async def list_todos(query: Annotated[TodoQuery, Query()], user: CurrentUserDep, cursors: CursorSealerDep) -> Response:
    """The user's todos, filtered and sorted, one keyset page at a time (follow `next_cursor`)."""
    return json_bytes_response((await user.read(service.list_todos, query, cursors)).to_json())


@router.get(
    "/{todo_id}",
    response_model=TodoRead,
    responses={**TAGGED, **NOT_FOUND, **NOT_MODIFIED},
    openapi_extra=IF_NONE_MATCH,
)
async def read_todo(
    todo_id: TodoId,
    user: CurrentUserDep,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """One todo, with its `ETag`; `If-None-Match` with that ETag → 304."""
    return cached_or(await user.read(service.get_todo, todo_id), if_none_match)


@router.put(
    "/{todo_id}", response_model=TodoRead, responses={**TAGGED, **NOT_FOUND, **PRECONDITION}, openapi_extra=IF_MATCH
)
async def replace_todo(
    todo_id: TodoId,
    body: TodoCreate,
    user: CurrentUserDep,
    if_match: IfMatchDep,
) -> Response:
    """Replace a todo: fields left out are reset to their defaults."""
    return representation(await user.run(service.replace_todo, todo_id, body, if_match))


@router.patch(
    "/{todo_id}", response_model=TodoRead, responses={**TAGGED, **NOT_FOUND, **PRECONDITION}, openapi_extra=IF_MATCH
)
async def update_todo(
    todo_id: TodoId,
    body: TodoUpdate,
    user: CurrentUserDep,
    if_match: IfMatchDep,
) -> Response:
    """Change only the fields sent; `null` clears `due_at` or `list_id`."""
    return representation(await user.run(service.update_todo, todo_id, body, if_match))


@router.delete(
    "/{todo_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **PRECONDITION},
    openapi_extra=IF_MATCH,
)
async def delete_todo(todo_id: TodoId, user: CurrentUserDep, if_match: IfMatchDep) -> None:
    """Move a todo to the trash (`POST /api/trash/{id}/restore` brings it back)."""
    await user.run(service.delete_todo, todo_id, if_match)
