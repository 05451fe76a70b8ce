"""Engine, sessions, and the request-scoped session dependency (the only place that commits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from todo_api.config import Settings

DRIVER = "postgresql+psycopg"


def driver_url(url: str) -> URL:
    """Accept `postgres://` / `postgresql://` URLs as pasted (e.g. from Neon) and pick psycopg 3.

    Query parameters (`sslmode`, `channel_binding`, `sslnegotiation`, `options`, `host=/socket`)
    pass through to libpq unchanged.
    """
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", DRIVER}:
        return parsed.set(drivername=DRIVER)
    raise ValueError("DATABASE_URL must be a postgresql:// or postgres:// URL")


def connect_args(settings: Settings, url: URL) -> dict[str, Any]:
    args: dict[str, Any] = {
        # Server-side prepared statements break behind PgBouncer in transaction mode
        # (Neon's `-pooler` host): never prepare.
        "prepare_threshold": None,
    }
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = settings.db_connect_timeout_seconds
    return args


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    parsed = driver_url(url or settings.database_url_value())
    return create_async_engine(
        parsed,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_pre_ping=True,
        connect_args=connect_args(settings, parsed),
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and transaction per request: commit on success, roll back on any error.

    Used with `scope="function"` so the commit happens before the response is sent: a 2xx
    means the write is durable.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
