"""Response documentation shared by resource routers, and the `Location` of created resources."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


class UnavailableBody(ErrorBody):
    request_id: str | None = None


type Responses = dict[int | str, dict[str, Any]]

COMMON: Responses = {
    401: {"model": ErrorBody, "description": "Missing or invalid token (`WWW-Authenticate: Bearer`)."},
    403: {"model": ErrorBody, "description": "The token lacks the scope this method needs."},
    503: {"model": UnavailableBody, "description": "A dependency is down; retry after `Retry-After` seconds."},
}
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "No such resource for this user."}}
CONFLICT: Responses = {409: {"model": ErrorBody, "description": "Conflicts with another resource of this user."}}


def location(request: Request, route_name: str, **path_params: Any) -> str:
    """Path of a resource, e.g. `/api/todos/{id}` (relative `Location`, RFC 9110 §10.2.2)."""
    return str(request.app.url_path_for(route_name, **{k: str(v) for k, v in path_params.items()}))
