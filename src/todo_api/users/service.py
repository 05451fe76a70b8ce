"""Account rules: just-in-time provisioning from a verified token, and account deletion."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine import Connection

from todo_api.auth.principal import Principal
from todo_api.users.cache import IdentityCache
from todo_api.users.repository import UserRepository


def _is_current(user: Row[Any], principal: Principal) -> bool:
    """Stored profile already matches the token's claims (absent claims change nothing)."""
    return (principal.email is None or principal.email == user.email) and (
        principal.name is None or principal.name == user.name
    )


def _current_user(db: Connection, principal: Principal, cache: IdentityCache) -> Row[Any]:
    """The user for this token: created on first sight, profile refreshed when claims change.

    Only a row that was already committed goes into the cache: one written here is not yet (its
    transaction may still fail to commit); the next request finds it and caches it.
    """
    repository = UserRepository(db)
    user = repository.find_by_identity(principal.issuer, principal.subject)
    if user is not None and _is_current(user, principal):
        cache.put(user)
        return user
    return repository.upsert(principal)


def current_user_id(db: Connection, principal: Principal, cache: IdentityCache) -> uuid.UUID:
    """The internal id for this token (the caller has already looked in the cache)."""
    user_id: uuid.UUID = _current_user(db, principal, cache).id
    return user_id


def read_account(db: Connection, principal: Principal, cache: IdentityCache) -> Row[Any]:
    return _current_user(db, principal, cache)


def delete_account(db: Connection, principal: Principal, cache: IdentityCache) -> None:
    """Delete the account and everything it owns (ON DELETE CASCADE)."""
    cache.forget(principal)
    UserRepository(db).delete_identity(principal.issuer, principal.subject)
