"""Periodic housekeeping in every worker: forget expired idempotency keys and rate-limit windows,
purge the trash older than TRASH_RETENTION_DAYS and sync tombstones as old.

Idempotent and cheap (indexed deletes), so running it in several workers or replicas is harmless.
A round runs only if the worker served requests since the last one: an idle API sends no
statement at all, so a database that scales to zero when idle (Neon: after 5 minutes without
queries) can do so. Nothing piles up meanwhile: keys and windows only come from requests.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from todo_api.http.middleware import Activity
from todo_api.idempotency import purge_expired
from todo_api.ratelimit import RateLimiter
from todo_api.storage.database import Database
from todo_api.storage.faults import describe
from todo_api.sync.repository import forget_tombstones
from todo_api.trash import service as trash
from todo_api.users import service as users

logger = logging.getLogger("todo_api.maintenance")

INTERVAL_SECONDS = 300.0
DEFAULT_TRASH_RETENTION = timedelta(days=30)


async def purge_once(
    database: Database,
    limiter: RateLimiter,
    idempotency_retention: timedelta,
    trash_retention: timedelta = DEFAULT_TRASH_RETENTION,
) -> None:
    await database.run(purge_expired, idempotency_retention)
    await database.run(users.forget_old_deletions)
    # Tombstones written by this purge are kept as long as the trash was.
    await database.run(trash.expire_old, trash_retention)
    await database.run(forget_tombstones, trash_retention)
    await limiter.purge()


async def run_forever(
    database: Database,
    limiter: RateLimiter,
    idempotency_retention: timedelta,
    activity: Activity,
    interval: float = INTERVAL_SECONDS,
    trash_retention: timedelta = DEFAULT_TRASH_RETENTION,
) -> None:
    purged_at = 0  # `activity.requests` when the last round succeeded
    while True:
        await asyncio.sleep(interval)
        seen = activity.requests
        if seen == purged_at:
            continue  # idle since the last round: leave the database alone
        try:
            await purge_once(database, limiter, idempotency_retention, trash_retention)
        except Exception as exc:  # the database may be down; try again next round
            logger.warning("maintenance failed: %s", describe(exc))
        else:
            purged_at = seen
