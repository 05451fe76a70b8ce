"""Dependency aliases for handlers: the request's session and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.auth.http import authenticate, bearer_scheme
from todo_api.config import Settings
from todo_api.db import get_session
from todo_api.models import User
from todo_api.users import service as users

SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]


async def get_current_user(
    request: Request,
    session: SessionDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> User:
    """Applied to the whole `/api` router: verified token → provisioned user row."""
    principal = await authenticate(request)
    user = await users.current_user(session, principal)
    request.state.user_id = str(user.id)
    return user


CurrentUserDep = Annotated[User, Depends(get_current_user)]
