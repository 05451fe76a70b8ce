"""Users by identity (issuer, subject). A user row is only ever reached through its own token:
every statement starts from `the_user()` (or `the_owner()`, the id that identity resolved to)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Interval, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import Session, col, delete, func, insert, select

from todo_api.auth.principal import Principal
from todo_api.models import DeletedAccount, User
from todo_api.models.scoping import (
    ISSUER,
    OWNER,
    SUBJECT,
    deleted_identities,
    owned_deleted_accounts,
    the_owner,
    the_user,
)
from todo_api.pagination import select_columns


class UserRecord(NamedTuple):
    id: uuid.UUID
    issuer: str
    subject: str
    email: str | None
    name: str | None
    created_at: datetime


_COLUMNS = [col(getattr(User, name)) for name in UserRecord._fields]
_FIND = select_columns(*_COLUMNS).where(the_user())
_FIND_OWNED = select_columns(*_COLUMNS).where(the_owner())
_DELETE = delete(User).where(the_user()).returning(col(User.id)).execution_options(synchronize_session=False)
_EXISTS = select(col(User.id)).where(the_owner())
# FOR NO KEY UPDATE: a user's writes take turns (foreign-key checks, KEY SHARE, are not blocked).
_WRITE_TURN = select(col(User.id)).where(the_owner()).with_for_update(key_share=True)
_DELETED_AT = select(col(DeletedAccount.deleted_at)).where(owned_deleted_accounts())
_IDENTITY_DELETED_AT = select(func.max(col(DeletedAccount.deleted_at))).where(deleted_identities())
_TOMBSTONE = insert(DeletedAccount)
# Housekeeping across all users: tombstones matter only while a worker may still hold a cached id.
_PURGE_TOMBSTONES = (
    delete(DeletedAccount)
    .where(col(DeletedAccount.deleted_at) < func.now() - bindparam("keep", type_=Interval))
    .execution_options(synchronize_session=False, all_users=True)
)


def _upsert() -> UpdateBase:
    """Create the user, or refresh email/name (absent claims keep the stored values)."""
    new = postgresql.insert(User)
    return new.on_conflict_do_update(
        index_elements=[col(User.issuer), col(User.subject)],
        set_={
            "email": func.coalesce(new.excluded.email, col(User.email)),
            "name": func.coalesce(new.excluded.name, col(User.name)),
            "updated_at": func.now(),
        },
    ).returning(*_COLUMNS)


_UPSERT = _upsert()


class UserRepository:
    def __init__(self, session: Session, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self._identity = {ISSUER: principal.issuer, SUBJECT: principal.subject}

    def find(self) -> UserRecord | None:
        row = self.session.exec(_FIND, params=self._identity).first()
        return None if row is None else UserRecord._make(row)

    def upsert(self) -> UserRecord:
        """Create the user, or refresh email/name; safe under concurrent first requests."""
        principal = self.principal
        values = {"id": uuid.uuid4(), "email": principal.email, "name": principal.name, **self._identity}
        return UserRecord._make(self.session.exec(_UPSERT, params=values).one())

    def delete(self) -> uuid.UUID | None:
        """Delete the user; lists and todos go with it (ON DELETE CASCADE). The id it had, if any."""
        return self.session.exec(_DELETE, params=self._identity).scalar()

    def remember_deletion(self, user_id: uuid.UUID, at: datetime) -> None:
        """The tombstone of the deleted account (kept for a few minutes, see `users.service`)."""
        self.session.exec(_TOMBSTONE, params={"user_id": user_id, "deleted_at": at, **self._identity})

    def last_deletion_time(self) -> datetime | None:
        """When an account of this identity was last deleted (as far as the tombstones still tell)."""
        return self.session.exec(_IDENTITY_DELETED_AT, params=self._identity).one()


def find_account(session: Session, user_id: uuid.UUID) -> UserRecord | None:
    row = session.exec(_FIND_OWNED, params={OWNER: user_id}).first()
    return None if row is None else UserRecord._make(row)


def account_exists(session: Session, user_id: uuid.UUID) -> bool:
    return session.exec(_EXISTS, params={OWNER: user_id}).first() is not None


def lock_account(session: Session, user_id: uuid.UUID) -> bool:
    """Take the user's write turn (the user row's lock) and say whether the account exists. Writes
    that read neighbours' positions or a parent's place take it first, so what they read stays true
    until they write: no two of one user's moves interleave (no duplicate positions, no cycles)."""
    return session.exec(_WRITE_TURN, params={OWNER: user_id}).first() is not None


def deletion_time(session: Session, user_id: uuid.UUID) -> datetime | None:
    return session.exec(_DELETED_AT, params={OWNER: user_id}).first()


def purge_tombstones(session: Session, keep: timedelta) -> None:
    session.exec(_PURGE_TOMBSTONES, params={"keep": keep})
