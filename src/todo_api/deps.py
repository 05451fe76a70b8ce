"""Dependency aliases for handlers: the app's context, the database and the authenticated user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security

from todo_api.auth.http import authenticate, bearer_scheme
from todo_api.auth.identities import IdentityCache
from todo_api.auth.principal import Principal
from todo_api.context import AppContext, app_context
from todo_api.quota import Quota
from todo_api.storage.database import Database
from todo_api.users import service as users


async def get_context(request: Request) -> AppContext:
    """Dependencies are `async def` throughout: FastAPI runs plain `def` ones in a thread pool."""
    return app_context(request)


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_database(context: ContextDep) -> Database:
    return context.database


DbDep = Annotated[Database, Depends(get_database)]


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The authenticated caller: the verified token's principal and the internal user id."""

    id: uuid.UUID
    principal: Principal


async def get_current_user(
    request: Request,
    context: ContextDep,
    _scheme: Annotated[None, Security(bearer_scheme)],
) -> CurrentUser:
    """Applied to the whole `/api` router: verified token → provisioned user (cached per worker,
    so most requests reach the database only for their own work)."""
    principal = await authenticate(request)
    user_id = context.identities.get(principal)
    if user_id is None:
        user_id = await context.database.run(users.current_user_id, principal, context.identities)
    request.state.user_id = str(user_id)
    return CurrentUser(user_id, principal)


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]


async def identity_cache(context: ContextDep) -> IdentityCache:
    return context.identities


IdentityCacheDep = Annotated[IdentityCache, Depends(identity_cache)]


async def todo_quota(context: ContextDep) -> Quota:
    return Quota(context.settings.max_todos_per_user, context.row_gauge)


async def list_quota(context: ContextDep) -> Quota:
    return Quota(context.settings.max_lists_per_user, context.row_gauge)


TodoQuotaDep = Annotated[Quota, Depends(todo_quota)]
ListQuotaDep = Annotated[Quota, Depends(list_quota)]
