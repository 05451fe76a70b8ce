"""Engine, sessions, and the request-scoped session dependency (the only place that commits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sqlalchemy import event, func, select
from sqlalchemy.engine import URL, Connection, make_url
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
    engine = create_async_engine(
        parsed,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_pre_ping=True,
        connect_args=connect_args(settings, parsed),
    )
    _bound_every_statement(engine, settings.db_statement_timeout_ms)
    return engine


def _bound_every_statement(engine: AsyncEngine, timeout_ms: int) -> None:
    """`SET LOCAL statement_timeout` at the start of every transaction.

    Per transaction, not per connection: behind PgBouncer in transaction mode (Neon's pooler) a
    session setting would land on whichever server connection ran it, and startup parameters are
    refused. A slow or locked database then fails fast as 503 instead of hanging a request.
    """
    set_timeout = select(func.set_config("statement_timeout", str(timeout_ms), True))

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.execute(set_timeout)


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
