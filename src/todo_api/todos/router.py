from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from todo_api.deps import CurrentUserDep, SessionDep
from todo_api.pagination import Page
from todo_api.responses import NOT_FOUND, location
from todo_api.todos import service
from todo_api.todos.schemas import TodoCreate, TodoQuery, TodoRead, TodoUpdate

router = APIRouter(prefix="/todos", tags=["todos"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_todo(
    body: TodoCreate, user: CurrentUserDep, session: SessionDep, request: Request, response: Response
) -> TodoRead:
    """Create a todo. `Location` names the new resource."""
    todo = await service.create_todo(session, user.id, body)
    response.headers["Location"] = location(request, "read_todo", todo_id=todo.id)
    return todo


@router.get("")
async def list_todos(query: Annotated[TodoQuery, Query()], user: CurrentUserDep, session: SessionDep) -> Page[TodoRead]:
    """The user's todos, filtered and sorted, one keyset page at a time (follow `next_cursor`)."""
    return await service.list_todos(session, user.id, query)


@router.get("/{todo_id}", responses=NOT_FOUND)
async def read_todo(todo_id: uuid.UUID, user: CurrentUserDep, session: SessionDep) -> TodoRead:
    """One todo."""
    return await service.get_todo(session, user.id, todo_id)


@router.put("/{todo_id}", responses=NOT_FOUND)
async def replace_todo(todo_id: uuid.UUID, body: TodoCreate, user: CurrentUserDep, session: SessionDep) -> TodoRead:
    """Replace a todo: fields left out are reset to their defaults."""
    return await service.replace_todo(session, user.id, todo_id, body)


@router.patch("/{todo_id}", responses=NOT_FOUND)
async def update_todo(todo_id: uuid.UUID, body: TodoUpdate, user: CurrentUserDep, session: SessionDep) -> TodoRead:
    """Change only the fields sent; `null` clears `due_at` or `list_id`."""
    return await service.update_todo(session, user.id, todo_id, body)


@router.delete("/{todo_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_todo(todo_id: uuid.UUID, user: CurrentUserDep, session: SessionDep) -> None:
    """Delete a todo."""
    await service.delete_todo(session, user.id, todo_id)
