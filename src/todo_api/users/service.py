"""Account rules: just-in-time provisioning from a verified token, and account deletion."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from todo_api.auth.identities import IdentityCache
from todo_api.auth.principal import Principal
from todo_api.users.repository import UserRecord, UserRepository


def _is_current(user: UserRecord, principal: Principal) -> bool:
    """Stored profile already matches the token's claims (absent claims change nothing)."""
    return (principal.email is None or principal.email == user.email) and (
        principal.name is None or principal.name == user.name
    )


def _current_user(session: Session, principal: Principal, cache: IdentityCache) -> UserRecord:
    """The user for this token: created on first sight, profile refreshed when claims change.

    Only a row that was already committed goes into the cache: one written here is not yet (its
    transaction may still fail to commit); the next request finds it and caches it.
    """
    repository = UserRepository(session, principal)
    user = repository.find()
    if user is not None and _is_current(user, principal):
        cache.put(user)
        return user
    return repository.upsert()


def current_user_id(session: Session, principal: Principal, cache: IdentityCache) -> uuid.UUID:
    """The internal id for this token (the caller has already looked in the cache)."""
    return _current_user(session, principal, cache).id


def read_account(session: Session, principal: Principal, cache: IdentityCache) -> UserRecord:
    return _current_user(session, principal, cache)


def delete_account(session: Session, principal: Principal, cache: IdentityCache) -> None:
    """Delete the account and everything it owns (ON DELETE CASCADE)."""
    cache.forget(principal)
    UserRepository(session, principal).delete()
