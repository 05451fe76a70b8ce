"""The `/api` router. Authentication is attached here, once, so no route can forget it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from todo_api.deps import get_current_user
from todo_api.users.router import router as users_router


class ErrorBody(BaseModel):
    detail: str


class UnavailableBody(ErrorBody):
    request_id: str | None = None


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid token (`WWW-Authenticate: Bearer`)."},
    403: {"model": ErrorBody, "description": "The token lacks the scope this method needs."},
    503: {"model": UnavailableBody, "description": "A dependency is down; retry after `Retry-After` seconds."},
}

api_router = APIRouter(prefix="/api", dependencies=[Depends(get_current_user)], responses=COMMON_RESPONSES)
api_router.include_router(users_router)
