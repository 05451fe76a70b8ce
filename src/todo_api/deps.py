"""Dependency aliases for handlers: the database and the authenticated user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security

from todo_api.auth.http import authenticate, bearer_scheme
from todo_api.auth.principal import Principal
from todo_api.config import Settings
from todo_api.quota import Quota
from todo_api.sealed import Sealer
from todo_api.storage.database import Database
from todo_api.users import service as users
from todo_api.users.cache import IdentityCache


async def get_database(request: Request) -> Database:
    """Dependencies are `async def` throughout: FastAPI runs plain `def` ones in a thread pool."""
    database: Database = request.app.state.database
    return database


DbDep = Annotated[Database, Depends(get_database)]


async def get_settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The authenticated caller: the verified token's principal and the internal user id."""

    id: uuid.UUID
    principal: Principal


async def get_current_user(
    request: Request,
    db: DbDep,
    _scheme: Annotated[None, Security(bearer_scheme)],
) -> CurrentUser:
    """Applied to the whole `/api` router: verified token → provisioned user (cached per worker,
    so most requests reach the database only for their own work)."""
    principal = await authenticate(request)
    cache: IdentityCache = request.app.state.identity_cache
    user_id = cache.get(principal)
    if user_id is None:
        user_id = await db.run(users.current_user_id, principal, cache)
    request.state.user_id = str(user_id)
    return CurrentUser(user_id, principal)


async def identity_cache(request: Request) -> IdentityCache:
    cache: IdentityCache = request.app.state.identity_cache
    return cache


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]
IdentityCacheDep = Annotated[IdentityCache, Depends(identity_cache)]


async def todo_quota(request: Request, settings: SettingsDep) -> Quota:
    return Quota(settings.max_todos_per_user, request.app.state.row_gauge)


async def list_quota(request: Request, settings: SettingsDep) -> Quota:
    return Quota(settings.max_lists_per_user, request.app.state.row_gauge)


async def cursor_sealer(request: Request) -> Sealer:
    sealer: Sealer = request.app.state.cursor_sealer
    return sealer


CursorSealerDep = Annotated[Sealer, Depends(cursor_sealer)]
TodoQuotaDep = Annotated[Quota, Depends(todo_quota)]
ListQuotaDep = Annotated[Quota, Depends(list_quota)]
