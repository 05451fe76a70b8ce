"""Account rules: just-in-time provisioning from a verified token, and account deletion."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.auth.principal import Principal
from todo_api.models import User
from todo_api.users.repository import UserRepository


def _is_current(user: User, principal: Principal) -> bool:
    """Stored profile already matches the token's claims (absent claims change nothing)."""
    return (principal.email is None or principal.email == user.email) and (
        principal.name is None or principal.name == user.name
    )


async def current_user(session: AsyncSession, principal: Principal) -> User:
    """The user for this token: created on first sight, profile refreshed when claims change."""
    repository = UserRepository(session)
    user = await repository.find_by_identity(principal.issuer, principal.subject)
    if user is not None and _is_current(user, principal):
        return user
    return await repository.upsert(principal)


async def delete_account(session: AsyncSession, user: User) -> None:
    await UserRepository(session).delete(user.id)
