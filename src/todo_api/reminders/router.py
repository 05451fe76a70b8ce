from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from todo_api.deps import CurrentUserDep, CursorSealerDep
from todo_api.http.responses import json_bytes_response
from todo_api.http.routing import StrictJsonRoute
from todo_api.reminders import service
from todo_api.reminders.schemas import FiringPage, ReminderQuery

router = APIRouter(prefix="/reminders", tags=["reminders"], route_class=StrictJsonRoute)


@router.get("", response_model=FiringPage)
async def list_reminders(
    query: Annotated[ReminderQuery, Query()], user: CurrentUserDep, cursors: CursorSealerDep
) -> Response:
    """The user's reminders firing in `[from, to)` (at most 7 days), in firing order: what a notifier polls."""
    return json_bytes_response((await user.read(service.list_reminders, query, cursors)).to_json())
