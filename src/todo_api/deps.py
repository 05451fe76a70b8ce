"""Dependency aliases for handlers: the app's context, the database and the authenticated user."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from todo_api.auth.current import CurrentUser
from todo_api.auth.http import authenticate
from todo_api.auth.identities import IdentityCache
from todo_api.context import AppContext, app_context
from todo_api.errors import AccountDeleted
from todo_api.http.middleware import received_at
from todo_api.sealed import Sealer
from todo_api.storage.database import Database
from todo_api.users import service as users

# Each dependency reads the app's context from the request itself rather than depending on
# `get_context`: FastAPI resolves every declared sub-dependency again on every request.


async def get_context(request: Request) -> AppContext:
    """Dependencies are `async def` throughout: FastAPI runs plain `def` ones in a thread pool."""
    return app_context(request)


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_database(request: Request) -> Database:
    return app_context(request).database


DbDep = Annotated[Database, Depends(get_database)]


async def get_current_user(request: Request) -> CurrentUser:
    """Applied to the whole `/api` router: the verified token's principal, and the user id this
    worker has cached for it (a miss is resolved, and the user provisioned, inside the request's
    unit of work: `CurrentUser.run`). The bearer scheme is declared in the OpenAPI document by
    `http.openapi` (the token itself was checked by the middleware)."""
    context = app_context(request)
    principal = await authenticate(request)

    def lookup() -> uuid.UUID | None:
        user_id = context.identities.get(principal)
        if user_id is not None:
            request.state.user_id = str(user_id)
        return user_id

    def resolve(session: Session) -> uuid.UUID:
        user_id = users.current_user_id(session, principal, context.identities, received_at(request))
        request.state.user_id = str(user_id)
        return user_id

    def find(session: Session) -> uuid.UUID | None:
        user_id = users.existing_user_id(session, principal, context.identities)
        if user_id is not None:
            request.state.user_id = str(user_id)
        return user_id

    async def account_gone(user_id: uuid.UUID) -> None:
        """Deleted after this request arrived → 409; else this worker's cache was stale."""
        if await context.database.run(users.deleted_since, user_id, received_at(request)):
            raise AccountDeleted
        context.identities.forget(principal)

    return CurrentUser(
        principal, context.database, lookup(), lookup, resolve, find, account_gone, users.require_account
    )


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]


async def identity_cache(request: Request) -> IdentityCache:
    return app_context(request).identities


IdentityCacheDep = Annotated[IdentityCache, Depends(identity_cache)]


async def todo_limit(request: Request) -> int:
    """MAX_TODOS_PER_USER (0: no limit)."""
    return app_context(request).settings.max_todos_per_user


async def list_limit(request: Request) -> int:
    """MAX_LISTS_PER_USER (0: no limit)."""
    return app_context(request).settings.max_lists_per_user


TodoLimitDep = Annotated[int, Depends(todo_limit)]
ListLimitDep = Annotated[int, Depends(list_limit)]


async def cursor_sealer(request: Request) -> Sealer:
    return app_context(request).cursors


CursorSealerDep = Annotated[Sealer, Depends(cursor_sealer)]
