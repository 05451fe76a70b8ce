from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from todo_api.deps import CurrentUserDep, SessionDep
from todo_api.lists import service
from todo_api.lists.schemas import ListCreate, ListQuery, ListRead, ListUpdate
from todo_api.pagination import Page
from todo_api.responses import CONFLICT, NOT_FOUND, location

router = APIRouter(prefix="/lists", tags=["lists"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_list(
    body: ListCreate, user: CurrentUserDep, session: SessionDep, request: Request, response: Response
) -> ListRead:
    """Create a list. Names are unique per user (case-insensitively): a duplicate is 409."""
    created = await service.create_list(session, user.id, body)
    response.headers["Location"] = location(request, "read_list", list_id=created.id)
    return created


@router.get("")
async def list_lists(query: Annotated[ListQuery, Query()], user: CurrentUserDep, session: SessionDep) -> Page[ListRead]:
    """The user's lists with their todo counts, one keyset page at a time."""
    return await service.list_lists(session, user.id, query)


@router.get("/{list_id}", responses=NOT_FOUND)
async def read_list(list_id: uuid.UUID, user: CurrentUserDep, session: SessionDep) -> ListRead:
    """One list with its todo counts."""
    return await service.get_list(session, user.id, list_id)


@router.put("/{list_id}", responses={**NOT_FOUND, **CONFLICT})
async def replace_list(list_id: uuid.UUID, body: ListCreate, user: CurrentUserDep, session: SessionDep) -> ListRead:
    """Replace a list."""
    return await service.update_list(session, user.id, list_id, body)


@router.patch("/{list_id}", responses={**NOT_FOUND, **CONFLICT})
async def update_list(list_id: uuid.UUID, body: ListUpdate, user: CurrentUserDep, session: SessionDep) -> ListRead:
    """Change only the fields sent."""
    return await service.update_list(session, user.id, list_id, body)


@router.delete("/{list_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_list(list_id: uuid.UUID, user: CurrentUserDep, session: SessionDep) -> None:
    """Delete a list **and every todo in it**."""
    await service.delete_list(session, user.id, list_id)
