"""The authenticated caller, and the unit of work that runs on its behalf."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate

from sqlmodel import Session

from todo_api.auth.principal import Principal
from todo_api.errors import AccountGone
from todo_api.storage.database import Database


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The verified token's principal and the internal user id it resolved to (cached per worker)."""

    id: uuid.UUID
    principal: Principal
    database: Database
    # After `AccountGone`: the id of the fresh account this request belongs to, or `AccountDeleted`
    # if the account was deleted while the request was in flight.
    replace_account: Callable[[], Awaitable[uuid.UUID]]

    async def run[**P, T](
        self, work: Callable[Concatenate[Session, uuid.UUID, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(session, user_id, …)` in one unit of work. If the work finds no user row
        (`AccountGone`: the account behind a worker's cached id was deleted through another worker
        before this request arrived), the request belongs to a fresh account, as if the cache had
        been current, and runs once more."""
        try:
            return await self.database.run(work, self.id, *args, **kwargs)
        except AccountGone:
            user_id = await self.replace_account()
            return await self.database.run(work, user_id, *args, **kwargs)
