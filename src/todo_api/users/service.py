"""Account rules: just-in-time provisioning from a verified token, and account deletion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from todo_api.auth.identities import IdentityCache
from todo_api.auth.principal import Principal
from todo_api.errors import AccountDeleted, AccountGone
from todo_api.users.repository import (
    UserRecord,
    UserRepository,
    account_exists,
    deletion_time,
    find_account,
    purge_tombstones,
)
from todo_api.users.repository import (
    lock_account as _lock_account,
)

# The account row this unit of work has already read or written, by the identity look-up or the
# upsert (`session.info`, which lives as long as the session: one run of the unit of work).
# `read_account` answers from it for the same id: `GET /api/users/me` on an identity-cache miss is
# then one statement (one round trip) instead of two, and a new user's first `me` reads nothing
# after the upsert. The row is what the same statement would have returned a moment earlier.
_ACCOUNT = "todo_api.users.account"


def _seen(session: Session, user: UserRecord | None) -> UserRecord | None:
    if user is not None:
        session.info[_ACCOUNT] = user
    return user


def is_current(user: UserRecord, principal: Principal) -> bool:
    """Stored profile already matches the token's claims (absent claims change nothing)."""
    return (principal.email is None or principal.email == user.email) and (
        principal.name is None or principal.name == user.name
    )


def _cached_if_current(user: UserRecord | None, principal: Principal, cache: IdentityCache) -> uuid.UUID | None:
    """The committed account's id, now in the cache, when its stored profile matches the token."""
    if user is None or not is_current(user, principal):
        return None
    cache.put(user)
    return user.id


def current_user_id(
    session: Session, principal: Principal, cache: IdentityCache, arrived: datetime | None = None
) -> uuid.UUID:
    """The internal id for this token (the caller has already looked in the cache): the user, created
    on first sight, its profile refreshed when the claims changed.

    Only a row that was already committed goes into the cache: one written here is not yet (its
    transaction may still fail to commit); the next request finds it and caches it. A request that
    `arrived` before this identity's account was deleted, and finds no user row, raced with the
    deletion: `AccountDeleted` (409), never a fresh account for a write the deletion refused.
    """
    repository = UserRepository(session, principal)
    user = _seen(session, repository.find())
    known = _cached_if_current(user, principal, cache)
    if known is not None:
        return known
    if user is None and arrived is not None:
        deleted_at = repository.last_deletion_time()
        if deleted_at is not None and deleted_at >= arrived:
            raise AccountDeleted
    upserted = repository.upsert()
    _seen(session, upserted)
    return upserted.id


def existing_user_id(session: Session, principal: Principal, cache: IdentityCache) -> uuid.UUID | None:
    """`current_user_id` for a request that only reads: the id of an account that exists with the
    token's profile (one SELECT, cached like `current_user_id` does), else None: provisioning
    the user or refreshing its profile is a write, left to the caller's transaction."""
    return _cached_if_current(_seen(session, UserRepository(session, principal).find()), principal, cache)


def read_account(session: Session, user_id: uuid.UUID) -> UserRecord:
    """The account the request resolved its token to (`AccountGone` if it no longer exists); the
    row the identity look-up of this unit of work found, if it found this one."""
    seen = session.info.get(_ACCOUNT)
    user = seen if isinstance(seen, UserRecord) and seen.id == user_id else find_account(session, user_id)
    if user is None:
        raise AccountGone
    return user


def delete_account(session: Session, principal: Principal, cache: IdentityCache) -> None:
    """Delete the account and everything it owns (ON DELETE CASCADE), and remember when (the
    worker's clock, as the last statement before the commit): creates of this user that were in
    flight meanwhile find the user row gone and are refused, later ones start a fresh account
    (`replace_account`)."""
    cache.forget(principal)
    repository = UserRepository(session, principal)
    deleted = repository.delete()
    if deleted is not None:
        repository.remember_deletion(deleted, datetime.now(UTC))


def serialize_writes(session: Session, user_id: uuid.UUID) -> None:
    """Take the user's write turn (the user row's lock, held until this transaction ends), first
    thing in a write that locks rows in an order no other write may reverse.

    The orders: a todo write locks the todo, then its list (its counts, which sync re-sends, are
    stamped by a trigger); trashing or restoring a todo also the user row (live counts); a create
    locks the user row in its INSERT … SELECT … FOR UPDATE (quotas), then the list. So the writes
    that lock more than one todo or list take the turn first: moving a todo between lists, trashing,
    restoring or purging, trashing a list (the turn, then its todos, then the list). A create is
    already in turn; editing or completing a todo locks the todo and then one list, in the common
    order, and waits for no turn (one round trip fewer on the hottest writes).

    `AccountGone` if the account no longer exists (the same statement tells).
    """
    lock_account(session, user_id)


def require_account(session: Session, user_id: uuid.UUID) -> None:
    """Return if the account exists, raise `AccountGone` if not: after a create was not admitted
    (its cap refused the row, or the account is gone), and for a request run as a cached id that
    found nothing (`auth.current.CurrentUser`)."""
    if not account_exists(session, user_id):
        raise AccountGone


def lock_account(session: Session, user_id: uuid.UUID) -> None:
    """Take the account's lock for this unit of work (see `users.repository.lock_account`);
    `AccountGone` if the account no longer exists."""
    if not _lock_account(session, user_id):
        raise AccountGone


def deleted_since(session: Session, user_id: uuid.UUID, since: datetime) -> bool:
    """Whether the account with this id was deleted at or after `since` (as far as the tombstones
    still tell: they are kept for `TOMBSTONE_RETENTION`)."""
    deleted_at = deletion_time(session, user_id)
    return deleted_at is not None and deleted_at >= since


# A deletion matters to `require_account` only while some worker may still hold the account's id in
# its identity cache (its TTL) or a request that began before it may still run (bounded by the
# statement timeout): a few minutes cover both with room to spare.
TOMBSTONE_RETENTION = timedelta(minutes=10)


def forget_old_deletions(session: Session) -> None:
    """Housekeeping: drop tombstones older than `TOMBSTONE_RETENTION` (every user's)."""
    purge_tombstones(session, TOMBSTONE_RETENTION)
