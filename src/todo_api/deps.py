"""Dependency aliases for handlers: the app's context, the database and the authenticated user."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request, Security

from todo_api.auth.current import CurrentUser
from todo_api.auth.http import authenticate, bearer_scheme
from todo_api.auth.identities import IdentityCache
from todo_api.context import AppContext, app_context
from todo_api.errors import AccountDeleted
from todo_api.http.middleware import received_at
from todo_api.sealed import Sealer
from todo_api.storage.database import Database
from todo_api.users import service as users


async def get_context(request: Request) -> AppContext:
    """Dependencies are `async def` throughout: FastAPI runs plain `def` ones in a thread pool."""
    return app_context(request)


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_database(context: ContextDep) -> Database:
    return context.database


DbDep = Annotated[Database, Depends(get_database)]


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

    async def replace_account() -> uuid.UUID:
        """The cached id's account is gone: deleted after this request arrived → 409, else a
        worker's cache was stale → the request belongs to a fresh account."""
        if await context.database.run(users.deleted_since, user_id, received_at(request)):
            raise AccountDeleted
        context.identities.forget(principal)
        fresh = await context.database.run(users.current_user_id, principal, context.identities)
        request.state.user_id = str(fresh)
        return fresh

    return CurrentUser(user_id, principal, context.database, replace_account)


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]


async def identity_cache(context: ContextDep) -> IdentityCache:
    return context.identities


IdentityCacheDep = Annotated[IdentityCache, Depends(identity_cache)]


async def todo_limit(context: ContextDep) -> int:
    """MAX_TODOS_PER_USER (0: no limit)."""
    return context.settings.max_todos_per_user


async def list_limit(context: ContextDep) -> int:
    """MAX_LISTS_PER_USER (0: no limit)."""
    return context.settings.max_lists_per_user


TodoLimitDep = Annotated[int, Depends(todo_limit)]
ListLimitDep = Annotated[int, Depends(list_limit)]


async def cursor_sealer(context: ContextDep) -> Sealer:
    return context.cursors


CursorSealerDep = Annotated[Sealer, Depends(cursor_sealer)]
