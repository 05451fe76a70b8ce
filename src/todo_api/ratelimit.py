"""Per-user rate limiting (fixed windows) shared by every worker and replica.

Counters live in Redis when REDIS_URL is set, else in an UNLOGGED PostgreSQL table, updated in
its own short transaction (never inside the request's transaction, so a user's requests do not
queue on the counter row). If the counter store fails, requests are let through and it is logged:
the limiter must not turn a blip into an outage. Unless PostgreSQL itself cannot be reached (no
connection, no answer in time): the request's own transaction would wait as long again, so it gets
its 503 at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import Interval, bindparam
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col, delete, func

from todo_api.auth.principal import Principal
from todo_api.config import Settings
from todo_api.models import RateLimitWindow
from todo_api.models.scoping import SUBJECT_KEY
from todo_api.storage.database import Database
from todo_api.storage.faults import is_unreachable

logger = logging.getLogger("todo_api.ratelimit")


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


class RateLimiter(Protocol):
    async def hit(self, principal: Principal) -> Verdict: ...

    async def aclose(self) -> None: ...


def subject_key(principal: Principal) -> str:
    """Counters are keyed by a hash of the identity, not by the raw subject."""
    return hashlib.sha256(f"{principal.issuer}\n{principal.subject}".encode()).hexdigest()[:32]


class _Windows:
    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window = window_seconds

    def current(self) -> tuple[int, int]:
        """(window start as epoch seconds, seconds until the next window)."""
        now = time.time()
        start = int(now) // self.window * self.window
        return start, max(1, int(start + self.window - now + 0.999))

    def verdict(self, count: int, retry_after: int) -> Verdict:
        return Verdict(True) if count <= self.limit else Verdict(False, retry_after)


class Unlimited:
    async def hit(self, principal: Principal) -> Verdict:
        return Verdict(True)

    async def aclose(self) -> None:
        return None


_NEW_HIT = postgresql.insert(RateLimitWindow)
_HIT = _NEW_HIT.on_conflict_do_update(
    index_elements=[col(RateLimitWindow.subject_key), col(RateLimitWindow.window_start)],
    set_={"count": col(RateLimitWindow.count) + 1},
).returning(col(RateLimitWindow.count))
# Housekeeping across all subjects (not a request's statement).
_PURGE = (
    delete(RateLimitWindow)
    .where(col(RateLimitWindow.window_start) < func.now() - bindparam("keep", type_=Interval))
    .execution_options(synchronize_session=False, all_users=True)
)


def _count_hit(session: Session, key: str, window_start: datetime) -> int:
    params = {SUBJECT_KEY: key, "window_start": window_start, "count": 1}
    return int(session.exec(_HIT, params=params).one()[0])


def _purge(session: Session, keep: timedelta) -> None:
    session.exec(_PURGE, params={"keep": keep})


class PostgresRateLimiter(_Windows):
    def __init__(self, database: Database, limit: int, window_seconds: int) -> None:
        super().__init__(limit, window_seconds)
        self.database = database

    async def hit(self, principal: Principal) -> Verdict:
        start, retry_after = self.current()
        # Its own short transaction, not the request's.
        count = await self.database.run(_count_hit, subject_key(principal), datetime.fromtimestamp(start, UTC))
        return self.verdict(count, retry_after)

    async def purge(self) -> None:
        await self.database.run(_purge, timedelta(seconds=2 * self.window))

    async def aclose(self) -> None:
        return None


class RedisRateLimiter(_Windows):
    def __init__(self, url: str, limit: int, window_seconds: int) -> None:
        super().__init__(limit, window_seconds)
        self.redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def hit(self, principal: Principal) -> Verdict:
        start, retry_after = self.current()
        key = f"todo-api:rate:{subject_key(principal)}:{start}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window * 2)
            count, _ = await pipe.execute()
        return self.verdict(int(count), retry_after)

    async def aclose(self) -> None:
        await self.redis.aclose()


def build_rate_limiter(settings: Settings, database: Database) -> RateLimiter:
    if settings.rate_limit_requests == 0:
        return Unlimited()
    if settings.redis_url is not None:
        return RedisRateLimiter(
            settings.redis_url.get_secret_value(), settings.rate_limit_requests, settings.rate_limit_window_seconds
        )
    return PostgresRateLimiter(database, settings.rate_limit_requests, settings.rate_limit_window_seconds)


async def check(limiter: RateLimiter, principal: Principal) -> Verdict:
    """The limiter's verdict; allow (and log) when its store is unavailable."""
    try:
        return await limiter.hit(principal)
    except Exception as exc:
        if is_unreachable(exc):  # PostgreSQL itself: the request would wait as long again, 503 now
            raise
        logger.warning("rate limiter unavailable, allowing request: %s", type(exc).__name__)
        return Verdict(True)
