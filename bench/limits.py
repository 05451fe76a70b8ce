"""How close the benchmark's own traffic came to the per-user rate limit: the highest count any user
reached in one window, read from the limiter's store after a block (best effort: the store's layout
is todo-api's, and may change)."""

from __future__ import annotations

import logging

from redis import Redis
from sqlalchemy import create_engine, func
from sqlmodel import col, select

from bench.configs import Config
from todo_api.models import RateLimitWindow
from todo_api.storage.database import driver_url

logger = logging.getLogger("bench.limits")
REDIS_KEYS = "todo-api:rate:*"


def _postgres_peak(database_url: str) -> int | None:
    engine = create_engine(driver_url(database_url), connect_args={"prepare_threshold": None})
    try:
        with engine.connect() as connection:
            peak = connection.execute(select(func.max(col(RateLimitWindow.count)))).scalar()
    finally:
        engine.dispose()
    return None if peak is None else int(peak)


def _redis_peak(redis_url: str) -> int | None:
    client = Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(REDIS_KEYS, count=1000))
        values = client.mget(keys) if keys else []
    finally:
        client.close()
    counts = [int(value) for value in values if value is not None]
    return max(counts) if counts else None


def rate_limit_peak(config: Config, database_url: str) -> int | None:
    try:
        redis_url = config.overrides.get("REDIS_URL")
        return _redis_peak(redis_url) if redis_url else _postgres_peak(database_url)
    except Exception as exc:  # the store's layout is todo-api's; a change must not fail the run
        logger.warning("could not read the rate-limit counters: %s", exc)
        return None


def redis_problem(redis_url: str) -> str | None:
    """None if Redis answers at `redis_url`, else why not."""
    try:
        client = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
