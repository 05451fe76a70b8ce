"""`POST /api/lists/{list_id}/move`: put a list right after another (the user's order of lists).

One unit of work: the account lock (one user's moves take turns), the list's new key between its
new neighbours (`lists.positions`), ONE UPDATE of the list (its version and ETag change)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import Uuid, bindparam
from sqlmodel import Session, col, func, update

from todo_api.deps import CurrentUserDep
from todo_api.errors import InvalidInput, NotFound
from todo_api.http.conditional import Tagged
from todo_api.http.responses import NOT_FOUND, TAGGED, representation
from todo_api.http.routing import StrictJsonRoute
from todo_api.lists import positions
from todo_api.lists.repository import ListRepository
from todo_api.lists.schemas import ListMove, ListRead
from todo_api.lists.service import ETAG
from todo_api.models import TodoList
from todo_api.models.base import sql_type
from todo_api.models.scoping import OWNER, owned_lists
from todo_api.users import service as users

router = APIRouter(prefix="/lists", tags=["lists"], route_class=StrictJsonRoute)
ListId = Annotated[uuid.UUID, Path(description="The list's `id`.")]
_MOVE = (
    update(TodoList)
    .where(owned_lists(), col(TodoList.id) == bindparam("target", type_=Uuid()))
    .values(
        position=bindparam("new_position", type_=sql_type(TodoList.position)),
        updated_at=func.now(),
        version=col(TodoList.version) + 1,
    )
    .execution_options(synchronize_session=False)
)


def relocate(session: Session, user_id: uuid.UUID, list_id: uuid.UUID, body: ListMove) -> Tagged[ListRead]:
    """Move the list; 404 unless it is the user's, 422 for an `after_id` that is not (the same
    answer for another user's list as for a missing one)."""
    users.lock_account(session, user_id)
    repository = ListRepository(session, user_id)
    if repository.get(list_id) is None:
        raise NotFound
    try:
        key = positions.key_after(session, user_id, list_id, body.after_id)
    except positions.AfterNotFound:
        raise InvalidInput(("body", "after_id"), "List not found", str(body.after_id)) from None
    session.exec(_MOVE, params={OWNER: user_id, "target": list_id, "new_position": key})
    record = repository.get(list_id)
    if record is None:  # locked: cannot happen
        raise NotFound
    return ETAG.tagged(ListRead.model_validate(record, from_attributes=True), record.state)


@router.post("/{list_id}/move", response_model=ListRead, responses={**TAGGED, **NOT_FOUND})
async def move_list(list_id: ListId, body: ListMove, user: CurrentUserDep) -> Response:
    """Put a list right after `after_id` (null: first) in the user's order of lists."""
    return representation(await user.run(relocate, list_id, body))
