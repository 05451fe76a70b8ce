"""Periodic housekeeping in every worker: forget expired idempotency keys and rate-limit windows.

Idempotent and cheap (indexed deletes), so running it in several workers or replicas is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from todo_api.idempotency import purge_expired
from todo_api.ratelimit import PostgresRateLimiter, RateLimiter

logger = logging.getLogger("todo_api.maintenance")

INTERVAL_SECONDS = 300.0


async def purge_once(engine: AsyncEngine, limiter: RateLimiter, idempotency_retention: timedelta) -> None:
    async with engine.begin() as connection:
        await purge_expired(connection, idempotency_retention)
    if isinstance(limiter, PostgresRateLimiter):
        await limiter.purge()


async def run_forever(
    engine: AsyncEngine,
    limiter: RateLimiter,
    idempotency_retention: timedelta,
    interval: float = INTERVAL_SECONDS,
) -> None:
    while True:
        try:
            await purge_once(engine, limiter, idempotency_retention)
        except Exception as exc:  # the database may be down; try again next round
            logger.warning("maintenance failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)
