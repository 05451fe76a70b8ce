"""The authenticated caller, and the unit of work that runs on its behalf."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate

from sqlmodel import Session

from todo_api.auth.principal import Principal
from todo_api.errors import AccountGone, AppError
from todo_api.pagination import MaybeEmpty
from todo_api.storage.database import Database


class _Unresolved(Exception):
    """A read found no current account for the token: resolving it is a write."""


@dataclass(slots=True)
class CurrentUser:
    """The verified token's principal, and the internal user id it resolves to.

    The id comes from the worker's identity cache when it holds it (`cached`); otherwise `resolve`
    finds the user (or provisions it) as the first statement of the request's own unit of work, so
    a cache miss costs one statement, not a transaction of its own.

    A cached id may be a deleted account's: the account was deleted through another worker (the
    identity is then a new user, with a new id) and this worker's cache does not know yet. Every
    statement is scoped to the id, and a deleted account has no rows left, so such a request finds
    nothing: a 404, an empty page, a cursor or sync token bound to the new id refused. So a request
    that ran as a cached id and found nothing checks that the account still exists (`verify`, one
    statement, only on those answers): if it does not, the request runs again as the new account
    (`AccountGone`, below). A write that takes the user's write turn finds out in that statement."""

    principal: Principal
    database: Database
    cached: uuid.UUID | None
    # `lookup()`: the worker's identity cache, again. Another request of this worker may have filled
    # it while this one waited for a connection (one statement fewer); such an id is checked like
    # one found at first, since the row behind it may have been read before a deletion.
    lookup: Callable[[], uuid.UUID | None]
    # `resolve(session)`: the id for this principal, read (or written) in that session.
    resolve: Callable[[Session], uuid.UUID]
    # `find(session)`: `resolve` without writing: the id of an existing, current account, or None.
    find: Callable[[Session], uuid.UUID | None]
    # `account_gone(id)`: the account this request ran as no longer exists. Raises `AccountDeleted`
    # if it was deleted while this request was in flight; otherwise forgets the stale cache entry.
    account_gone: Callable[[uuid.UUID], Awaitable[None]]
    # `verify(session, id)`: raises `AccountGone` if the account with this id no longer exists.
    verify: Callable[[Session, uuid.UUID], None]

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

        def as_id(session: Session, user_id: uuid.UUID) -> T:
            used[:] = [user_id]
            result = work(session, user_id, *args, **kwargs)
            if user_id is self.cached and isinstance(result, MaybeEmpty) and result.found_nothing:
                self.verify(session, user_id)  # an empty page: of this account, or of a deleted one?
            return result

        def cached_now() -> uuid.UUID | None:
            if self.cached is None:
                self.cached = self.lookup()
            return self.cached

        def as_user(session: Session) -> T:
            cached = cached_now()
            return as_id(session, self.resolve(session) if cached is None else cached)

        def as_user_found(session: Session) -> T:
            cached = cached_now()
            user_id = self.find(session) if cached is None else cached
            if user_id is None:
                raise _Unresolved
            return as_id(session, user_id)

        try:
            try:
                if read_only:
                    with contextlib.suppress(_Unresolved):  # nothing was written: run it as a write
                        return await self.database.read(as_user_found)
                return await self.database.run(as_user)
            except AppError as exc:
                # A client error (404, a refused cursor) for a cached id: is the account still there?
                # Checked in a unit of work of its own: the failed one may have been rolled back.
                if self.cached is not None and exc.status_code < 500 and not exc.found_the_account and used:
                    await self.database.read(self.verify, used[0])
                raise
        except AccountGone:
            await self.account_gone(used[0])
            self.cached = None
            return await self.database.run(as_user)
