"""The authenticated caller, and the unit of work that runs on its behalf."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate

from sqlmodel import Session

from todo_api.auth.principal import Principal
from todo_api.errors import AccountGone
from todo_api.storage.database import Database


class _Unresolved(Exception):
    """A read found no current account for the token: resolving it is a write."""


@dataclass(slots=True)
class CurrentUser:
    """The verified token's principal, and the internal user id it resolves to.

    The id comes from the worker's identity cache when it holds it (`cached`); otherwise `resolve`
    finds the user (or provisions it) as the first statement of the request's own unit of work, so
    a cache miss costs one statement, not a transaction of its own."""

    principal: Principal
    database: Database
    cached: uuid.UUID | None
    # `resolve(session)`: the id for this principal, read (or written) in that session.
    resolve: Callable[[Session], uuid.UUID]
    # `find(session)`: `resolve` without writing: the id of an existing, current account, or None.
    find: Callable[[Session], uuid.UUID | None]
    # `account_gone(id)`: the account this request ran as no longer exists. Raises `AccountDeleted`
    # if it was deleted while this request was in flight; otherwise forgets the stale cache entry.
    account_gone: Callable[[uuid.UUID], Awaitable[None]]

    async def run[**P, T](
        self, work: Callable[Concatenate[Session, uuid.UUID, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(session, user_id, …)` in one unit of work. If the work finds no user row
        (`AccountGone`): the account was deleted while this request was in flight
        (`account_gone` refuses it), or the account behind a worker's cached id was deleted through
        another worker before this request arrived: the request belongs to a fresh account, as if
        the cache had been current, and runs once more."""
        return await self._run(False, work, *args, **kwargs)

    async def read[**P, T](
        self, work: Callable[Concatenate[Session, uuid.UUID, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`run` for work that only reads (`Database.read`: one round trip per statement, no
        COMMIT). On a cache miss the account is looked up in the read as well; only when it has
        to be provisioned or its profile refreshed (a write) does the request run as `run` does."""
        return await self._run(True, work, *args, **kwargs)

    async def _run[**P, T](
        self,
        read_only: bool,
        work: Callable[Concatenate[Session, uuid.UUID, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        used: list[uuid.UUID] = []  # the id the last attempt ran as (a unit of work may be retried)

        def as_user(session: Session) -> T:
            user_id = self.resolve(session) if self.cached is None else self.cached
            used[:] = [user_id]
            return work(session, user_id, *args, **kwargs)

        def as_user_found(session: Session) -> T:
            user_id = self.find(session) if self.cached is None else self.cached
            if user_id is None:
                raise _Unresolved
            used[:] = [user_id]
            return work(session, user_id, *args, **kwargs)

        try:
            if read_only:
                with contextlib.suppress(_Unresolved):  # nothing was written: run it as a write
                    return await self.database.read(as_user_found)
            return await self.database.run(as_user)
        except AccountGone:
            await self.account_gone(used[0])
            self.cached = None
            return await self.database.run(as_user)
