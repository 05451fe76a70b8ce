from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from todo_api.batch import service
from todo_api.batch.commands import Limits
from todo_api.batch.schemas import BATCH_MAX_BODY_BYTES, MAX_COMMANDS, BatchRequest, BatchResponse
from todo_api.deps import ContextDep, CurrentUserDep, ListLimitDep, TodoLimitDep
from todo_api.errors import TooManyRequests
from todo_api.http.responses import GONE, ErrorBody, Responses, json_bytes_response
from todo_api.http.routing import StrictJsonRoute

router = APIRouter(prefix="/batch", tags=["batch"], route_class=StrictJsonRoute)
TOO_LARGE: Responses = {
    413: {
        "model": ErrorBody,
        "description": f"`payload_too_large`: the body is larger than {BATCH_MAX_BODY_BYTES} bytes "
        "(or MAX_BODY_BYTES, if larger).",
    }
}


@router.post("", response_model=BatchResponse, responses={**TOO_LARGE, **GONE})
async def run_batch(
    body: BatchRequest, user: CurrentUserDep, context: ContextDep, todo_limit: TodoLimitDep, list_limit: ListLimitDep
) -> Response:
    """Apply up to 100 commands in order, each once per `uuid`; one result per command."""
    # The request itself was counted on the way in; its other commands count too.
    verdict = context.rate_limiter.hit(user.principal, cost=min(len(body.commands), MAX_COMMANDS) - 1)
    if not verdict.allowed:
        raise TooManyRequests(verdict.retry_after)
    settings = service.BatchSettings(
        limits=Limits(todos=todo_limit, lists=list_limit, require_if_match=context.settings.require_if_match),
        retention=timedelta(hours=context.settings.idempotency_retention_hours),
        sealer=context.cursors,
    )
    return json_bytes_response((await user.run(service.run_batch, body, settings)).body)
