from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from todo_api.deps import CurrentUserDep, CursorSealerDep, ListLimitDep, TodoLimitDep
from todo_api.http.responses import DUPLICATE, NOT_FOUND, QUOTA, TAGGED, conflicts, json_bytes_response, representation
from todo_api.http.routing import StrictJsonRoute
from todo_api.lists.schemas import ListRead
from todo_api.todos.schemas import TodoRead
from todo_api.trash import service
from todo_api.trash.schemas import TrashPage, TrashQuery

router = APIRouter(prefix="/trash", tags=["trash"], route_class=StrictJsonRoute)
TrashedId = Annotated[uuid.UUID, Path(description="The trashed todo's or list's `id`.")]
LIST_IN_TRASH = "`list_in_trash`: the todo's list is in the trash; restore the list (its todos come with it)."
PARENT_IN_TRASH = (
    "`parent_in_trash`: the todo's parent is in the trash; restore the parent (its subtasks come with it)."
)


@router.get("", response_model=TrashPage)
async def list_trash(query: Annotated[TrashQuery, Query()], user: CurrentUserDep, cursors: CursorSealerDep) -> Response:
    """Deleted todos and lists, newest deletion first, one keyset page at a time."""
    return json_bytes_response((await user.read(service.list_trash, query, cursors)).to_json())


@router.post(
    "/{resource_id}/restore",
    response_model=TodoRead | ListRead,
    responses={**TAGGED, **NOT_FOUND, **conflicts(LIST_IN_TRASH, PARENT_IN_TRASH, QUOTA, DUPLICATE)},
)
async def restore_from_trash(
    resource_id: TrashedId, user: CurrentUserDep, todo_limit: TodoLimitDep, list_limit: ListLimitDep
) -> Response:
    """Restore a todo, or a list with the todos deleted with it; answers the restored resource."""
    return representation(await user.run(service.restore, resource_id, todo_limit, list_limit))


@router.delete("/{resource_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def purge_from_trash(resource_id: TrashedId, user: CurrentUserDep) -> None:
    """Delete a trashed todo or list (with its todos) for good."""
    await user.run(service.purge, resource_id)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def empty_trash(user: CurrentUserDep) -> None:
    """Delete everything in the trash for good."""
    await user.run(service.empty)
