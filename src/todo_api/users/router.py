from __future__ import annotations

from fastapi import APIRouter, Response, status

from todo_api.deps import CurrentUserDep, DbDep, IdentityCacheDep
from todo_api.http.responses import json_response
from todo_api.http.routing import StrictJsonRoute
from todo_api.users import service
from todo_api.users.schemas import UserRead

router = APIRouter(prefix="/users", tags=["users"], route_class=StrictJsonRoute)


@router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUserDep, cache: IdentityCacheDep) -> Response:
    """The authenticated user's account, created on the first request with a new token subject."""
    account = await user.read(service.read_account)
    if not service.is_current(account, user.principal):
        # This worker's cached id matched the token's claims, but another worker has stored other
        # claims since (they changed and changed back): store the token's, as a cache miss would.
        cache.forget(user.principal)
        user.cached = None
        account = await user.run(service.read_account)
    return json_response(UserRead.model_validate(account))


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_me(user: CurrentUserDep, db: DbDep, cache: IdentityCacheDep) -> None:
    """Delete the account and everything it owns. A later request starts a fresh, empty account."""
    await db.run(service.delete_account, user.principal, cache)
