"""The `/api` router. Authentication is attached here, once, so no route can forget it."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from todo_api.batch.router import router as batch_router
from todo_api.deps import get_current_user
from todo_api.http.responses import COMMON
from todo_api.lists.moves import router as list_moves_router
from todo_api.lists.router import router as lists_router
from todo_api.reminders.router import router as reminders_router
from todo_api.sync.router import router as sync_router
from todo_api.todos.planner_router import router as todo_planner_router
from todo_api.todos.router import router as todos_router
from todo_api.trash.router import router as trash_router
from todo_api.users.router import router as users_router

api_router = APIRouter(prefix="/api", dependencies=[Depends(get_current_user)], responses=COMMON)
api_router.include_router(todos_router)
api_router.include_router(lists_router)
api_router.include_router(users_router)
api_router.include_router(trash_router)
api_router.include_router(sync_router)
api_router.include_router(batch_router)
api_router.include_router(todo_planner_router)
api_router.include_router(list_moves_router)
api_router.include_router(reminders_router)
