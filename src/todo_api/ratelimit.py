"""Per-user rate limiting (fixed windows), shared by every worker and replica, off the request path.

Each worker counts what it admits per (user, window) and, at most `FLUSH_SECONDS` after its first
unflushed admission, adds those counts to a shared counter in one batched statement (PostgreSQL's
UNLOGGED `rate_limit_windows` table, or Redis with REDIS_URL), reading back each user's total. A
request is admitted while the last total this worker saw plus what it admitted since stays within
the limit: no round trip per request, and nothing at all while the worker is idle.

The price is bounded over-admission. A worker never admits more than the limit by itself, so with
W worker processes in all replicas a user gets at most W × limit requests per window; in practice
the limit plus what the other workers admitted for that user in the last flush interval, because
every worker learns the shared total at its next flush (tests/faults/test_cross_worker.py). If the
shared store fails, counts stay pending and are added at a later flush: a blip in the store never
refuses or delays a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import DateTime, Integer, Interval, Text, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, delete, func, select

from todo_api.auth.principal import Principal
from todo_api.config import Settings
from todo_api.models import RateLimitWindow
from todo_api.storage.database import Database
from todo_api.storage.faults import describe

logger = logging.getLogger("todo_api.ratelimit")

FLUSH_SECONDS = 0.25
type WindowKey = tuple[str, int]  # (subject key, window start in epoch seconds)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def subject_key(principal: Principal) -> str:
    """Counters are keyed by a hash of the identity, not by the raw subject."""
    return hashlib.sha256(f"{principal.issuer}\n{principal.subject}".encode()).hexdigest()[:32]


class CounterStore(Protocol):
    """Where the workers' counts meet."""

    async def add(self, counts: Mapping[WindowKey, int], window_seconds: int) -> dict[WindowKey, int]:
        """Add `counts` to the shared counters; return the new totals."""
        ...

    async def purge(self, window_seconds: int) -> None: ...

    async def aclose(self) -> None: ...


# All of a flush's counts as three array parameters, unnested into rows: one statement with one
# parameter set (SQLAlchemy's per-row bulk path cost ~25 µs of Python per row).
_ROWS = select(
    func.unnest(bindparam("subject_keys", type_=ARRAY(Text()))),
    func.unnest(bindparam("window_starts", type_=ARRAY(DateTime(timezone=True)))),
    func.unnest(bindparam("counts", type_=ARRAY(Integer()))),
)
_NEW = postgresql.insert(RateLimitWindow).from_select(
    [col(RateLimitWindow.subject_key), col(RateLimitWindow.window_start), col(RateLimitWindow.count)], _ROWS
)
_ADD = _NEW.on_conflict_do_update(
    index_elements=[col(RateLimitWindow.subject_key), col(RateLimitWindow.window_start)],
    set_={"count": col(RateLimitWindow.count) + _NEW.excluded.count},
).returning(col(RateLimitWindow.subject_key), col(RateLimitWindow.window_start), col(RateLimitWindow.count))
_ADD = _ADD.execution_options(dml_strategy="raw")  # the bind parameters feed the SELECT, not VALUES
# Housekeeping across all subjects (not a request's statement).
_PURGE = (
    delete(RateLimitWindow)
    .where(col(RateLimitWindow.window_start) < func.now() - bindparam("keep", type_=Interval))
    .execution_options(synchronize_session=False, all_users=True)
)


def _add(session: Session, counts: Mapping[WindowKey, int]) -> dict[WindowKey, int]:
    """One INSERT … SELECT unnest(…) ON CONFLICT DO UPDATE … RETURNING for all counts."""
    params = {
        "subject_keys": [key for key, _ in counts],
        "window_starts": [datetime.fromtimestamp(start, UTC) for _, start in counts],
        "counts": list(counts.values()),
    }
    totals = session.exec(_ADD, params=params)
    return {(key, int(start.timestamp())): count for key, start, count in totals}


def _purge(session: Session, keep: timedelta) -> None:
    session.exec(_PURGE, params={"keep": keep})


class PostgresCounters:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, counts: Mapping[WindowKey, int], window_seconds: int) -> dict[WindowKey, int]:
        return await self.database.run(_add, counts)

    async def purge(self, window_seconds: int) -> None:
        await self.database.run(_purge, timedelta(seconds=2 * window_seconds))

    async def aclose(self) -> None:
        return None


class RedisCounters:
    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def add(self, counts: Mapping[WindowKey, int], window_seconds: int) -> dict[WindowKey, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for (key, start), count in counts.items():
                name = f"todo-api:rate:{key}:{start}"
                pipe.incrby(name, count)
                pipe.expire(name, 2 * window_seconds)
            results = await pipe.execute()
        return {window: int(total) for window, total in zip(counts, results[::2], strict=True)}

    async def purge(self, window_seconds: int) -> None:
        return None  # keys expire by themselves

    async def aclose(self) -> None:
        await self.redis.aclose()


@dataclass(slots=True)
class _Count:
    pending: int = 0  # admitted by this worker, not yet sent to the shared counter
    sending: int = 0  # sent to the shared counter, its new total not read back yet
    total: int = 0  # the shared counter as last read (this worker's flushed admissions included)

    def seen(self) -> int:
        """Everything this worker knows was admitted: a flush in flight never opens a gap."""
        return self.total + self.sending + self.pending


class RateLimiter:
    """`hit()` decides at once from this worker's view; `run()` (a background task for the app's
    lifetime) adds the pending counts to the shared store. `store=None`: no limit at all."""

    def __init__(self, store: CounterStore | None, limit: int, window_seconds: int) -> None:
        self.store = store
        self.limit = limit
        self.window = window_seconds
        self._counts: dict[WindowKey, _Count] = {}
        self._pending = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def current(self) -> tuple[int, int]:
        """(window start as epoch seconds, seconds until the next window)."""
        now = time.time()
        start = int(now) // self.window * self.window
        return start, max(1, int(start + self.window - now + 0.999))

    def hit(self, principal: Principal, cost: int = 1) -> Verdict:
        """Admit `cost` requests' worth (a batch counts its commands) if they fit in the window."""
        if self.store is None or cost <= 0:
            return Verdict(True)
        start, retry_after = self.current()
        count = self._counts.setdefault((subject_key(principal), start), _Count())
        if count.seen() + cost > self.limit:
            return Verdict(False, retry_after)
        count.pending += cost
        self._pending.set()
        return Verdict(True)

    async def run(self) -> None:
        """Flush `FLUSH_SECONDS` after the first admission since the last flush; idle otherwise."""
        while self.store is not None:
            await self._pending.wait()
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        if self.store is None:
            return
        self._pending.clear()
        start, _ = self.current()
        for window in [window for window in self._counts if window[1] < start - self.window]:
            del self._counts[window]  # older than the previous window: no longer consulted
        batch = {window: count.pending for window, count in self._counts.items() if count.pending}
        if not batch:
            return
        for window, added in batch.items():
            self._counts[window].pending -= added
            self._counts[window].sending += added
        try:
            totals = await self.store.add(batch, self.window)
        except Exception as exc:  # keep the counts for the next flush; never fail a request over it
            logger.warning("rate-limit counters not shared this time: %s", describe(exc))
            for window, added in batch.items():
                count = self._counts.setdefault(window, _Count())
                count.sending -= added
                count.pending += added
            self._pending.set()
            return
        for window, added in batch.items():
            count = self._counts.setdefault(window, _Count())
            count.sending -= added
            count.total = max(count.total, totals.get(window, 0))

    async def purge(self) -> None:
        if self.store is not None:
            await self.store.purge(self.window)

    async def aclose(self) -> None:
        """Share what is still pending, then close the store."""
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.flush()
            await self.store.aclose()


def build_rate_limiter(settings: Settings, database: Database) -> RateLimiter:
    store: CounterStore | None = None
    if settings.rate_limit_requests and settings.redis_url is not None:
        store = RedisCounters(settings.redis_url.get_secret_value())
    elif settings.rate_limit_requests:
        store = PostgresCounters(database)
    return RateLimiter(store, settings.rate_limit_requests, settings.rate_limit_window_seconds)
