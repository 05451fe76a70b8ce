from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from todo_api.deps import CurrentUserDep, CursorSealerDep
from todo_api.http.responses import GONE, json_bytes_response
from todo_api.http.routing import StrictJsonRoute
from todo_api.sync import service
from todo_api.sync.schemas import SyncQuery, SyncResponse

router = APIRouter(prefix="/sync", tags=["sync"], route_class=StrictJsonRoute)


@router.get("", response_model=SyncResponse, responses=GONE)
async def sync(query: Annotated[SyncQuery, Query()], user: CurrentUserDep, sealer: CursorSealerDep) -> Response:
    """Without `sync_token`, everything; with it, what changed since (deletions included)."""
    return json_bytes_response((await user.read(service.sync, query.sync_token, query.limit, sealer)).body)
