from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from todo_api.deps import CurrentUserDep, CursorSealerDep, ListLimitDep
from todo_api.http.conditional import IF_MATCH, IF_NONE_MATCH, IfNoneMatchHeader, Precondition
from todo_api.http.responses import (
    CREATED,
    DUPLICATE,
    IN_FLIGHT,
    NOT_FOUND,
    NOT_MODIFIED,
    PRECONDITION,
    QUOTA,
    TAGGED,
    cached_or,
    conflicts,
    json_response,
    representation,
)
from todo_api.http.routing import StrictJsonRoute
from todo_api.idempotency import IdempotencyKeyHeader, respond_created
from todo_api.lists import service
from todo_api.lists.repository import ListState
from todo_api.lists.schemas import ListCreate, ListPage, ListQuery, ListRead, ListUpdate

router = APIRouter(prefix="/lists", tags=["lists"], route_class=StrictJsonRoute)
IfMatchDep = Annotated[Precondition[ListState] | None, Depends(service.ETAG.if_match)]
ListId = Annotated[uuid.UUID, Path(description="The list's `id`.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ListRead,
    responses={**CREATED, **conflicts(DUPLICATE, QUOTA, IN_FLIGHT)},
)
async def create_list(
    body: ListCreate,
    user: CurrentUserDep,
    limit: ListLimitDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Create a list. Names are unique per user (case-insensitively): a duplicate is 409."""
    create = partial(service.create_list, data=body, limit=limit)
    return await respond_created(request, user, idempotency_key, body, create, ("read_list", "list_id"))


@router.get("", response_model=ListPage)
async def list_lists(query: Annotated[ListQuery, Query()], user: CurrentUserDep, cursors: CursorSealerDep) -> Response:
    """The user's lists with their todo counts, one keyset page at a time."""
    return json_response(await user.read(service.list_lists, query, cursors))


@router.get(
    "/{list_id}",
    response_model=ListRead,
    responses={**TAGGED, **NOT_FOUND, **NOT_MODIFIED},
    openapi_extra=IF_NONE_MATCH,
)
async def read_list(
    list_id: ListId,
    user: CurrentUserDep,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    """One list with its todo counts and `ETag` (which changes when the counts change)."""
    return cached_or(await user.read(service.get_list, list_id), if_none_match)


@router.put(
    "/{list_id}",
    response_model=ListRead,
    responses={**TAGGED, **NOT_FOUND, **conflicts(DUPLICATE), **PRECONDITION},
    openapi_extra=IF_MATCH,
)
async def replace_list(
    list_id: ListId,
    body: ListCreate,
    user: CurrentUserDep,
    if_match: IfMatchDep,
) -> Response:
    """Replace a list."""
    return representation(await user.run(service.update_list, list_id, body, if_match))


@router.patch(
    "/{list_id}",
    response_model=ListRead,
    responses={**TAGGED, **NOT_FOUND, **conflicts(DUPLICATE), **PRECONDITION},
    openapi_extra=IF_MATCH,
)
async def update_list(
    list_id: ListId,
    body: ListUpdate,
    user: CurrentUserDep,
    if_match: IfMatchDep,
) -> Response:
    """Change only the fields sent."""
    return representation(await user.run(service.update_list, list_id, body, if_match))


@router.delete(
    "/{list_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **PRECONDITION},
    openapi_extra=IF_MATCH,
)
async def delete_list(list_id: ListId, user: CurrentUserDep, if_match: IfMatchDep) -> None:
    """Move a list **and every todo in it** to the trash (restoring the list brings them back)."""
    await user.run(service.delete_list, list_id, if_match)
