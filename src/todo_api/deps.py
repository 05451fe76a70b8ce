"""Dependency aliases for handlers: the request's database connection and the authenticated user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncConnection

from todo_api.auth.http import authenticate, bearer_scheme
from todo_api.auth.principal import Principal
from todo_api.config import Settings
from todo_api.db import get_connection
from todo_api.quota import Quota
from todo_api.users import service as users
from todo_api.users.cache import IdentityCache

DbDep = Annotated[AsyncConnection, Depends(get_connection, scope="function")]


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
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> CurrentUser:
    """Applied to the whole `/api` router: verified token → provisioned user (cached per worker)."""
    principal = await authenticate(request)
    user_id = await users.current_user_id(db, principal, request.app.state.identity_cache)
    request.state.user_id = str(user_id)
    return CurrentUser(user_id, principal)


async def identity_cache(request: Request) -> IdentityCache:
    """Dependencies are `async def` throughout: FastAPI runs plain `def` ones in a thread pool."""
    cache: IdentityCache = request.app.state.identity_cache
    return cache


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]
IdentityCacheDep = Annotated[IdentityCache, Depends(identity_cache)]


async def todo_quota(request: Request, settings: SettingsDep) -> Quota:
    return Quota(settings.max_todos_per_user, request.app.state.row_gauge)


async def list_quota(request: Request, settings: SettingsDep) -> Quota:
    return Quota(settings.max_lists_per_user, request.app.state.row_gauge)


TodoQuotaDep = Annotated[Quota, Depends(todo_quota)]
ListQuotaDep = Annotated[Quota, Depends(list_quota)]
