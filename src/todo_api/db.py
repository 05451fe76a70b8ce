"""Engine, pool, and the request-scoped connection dependency (the only place that commits)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from fastapi import Request
from psycopg.pq import TransactionStatus
from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from todo_api.config import Settings

DRIVER = "postgresql+psycopg"
IDLE = TransactionStatus.IDLE


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
        pool_pre_ping=False,  # replaced by `_begin_bounded_transactions`, which does both jobs
        connect_args=connect_args(settings, parsed),
    )
    _begin_bounded_transactions(engine, settings.db_statement_timeout_ms)
    return engine


def _begin_bounded_transactions(engine: AsyncEngine, timeout_ms: int) -> None:
    """Open every transaction with `BEGIN; SELECT set_config('statement_timeout', …, true)`.

    Sent when a connection is taken from the pool, as one simple-protocol message: one round trip
    does two jobs. As a ping: a connection that died (database restarted, Neon scaled to zero)
    raises a disconnect, and the pool replaces it transparently, so no request sees a stale
    connection. As a bound: the setting is transaction-local and covers every statement of the
    request. Per transaction, not per session: behind PgBouncer in transaction mode (Neon's
    pooler) a session setting would land on whichever server connection ran it, and startup
    parameters are refused there.

    So that the driver does not send its own `BEGIN` first (one more round trip), psycopg runs in
    autocommit mode and every transaction is begun explicitly: at checkout, and again if one
    checkout runs a second transaction after committing the first. SQLAlchemy does not know the
    difference: its commit and rollback reach psycopg, which sends COMMIT or ROLLBACK whenever
    the server reports an open transaction. (The previous version pipelined the driver's BEGIN
    with the statement: the same round trips, ~70 µs more CPU per request in psycopg's pipeline.)
    """
    statement = select(func.set_config("statement_timeout", str(timeout_ms), True))
    sql = "BEGIN; " + str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    begin_bounded = sql.encode()  # no parameters: one simple-protocol query, both statements

    def begin(dbapi_connection: Any) -> None:
        dbapi_connection.run_async(lambda connection: connection.execute(begin_bounded))

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.autocommit = True

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        try:
            begin(dbapi_connection)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise sa_exc.DisconnectionError from exc  # the pool discards it and tries a fresh connection

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.info.transaction_status == IDLE:
            begin(dbapi_connection)


class FairGate:
    """First come, first served admission to the connection pool, one slot per pooled connection.

    SQLAlchemy's asyncio pool hands a returned connection to whichever task asks next, and a
    waiter that loses the race goes back to the end of the queue: under load a few requests wait
    many times longer than the rest (p99 at 4-5x the median). Requests queue here instead, in
    order, so the pool itself never has to wait. Waiting longer than the pool timeout is the same
    failure as an exhausted pool (503 + Retry-After).
    """

    def __init__(self, slots: int, timeout_seconds: float) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._timeout = timeout_seconds

    async def __aenter__(self) -> None:
        if not self._slots.locked():  # a slot is free and nobody is queued: no timer needed
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise sa_exc.TimeoutError(f"no database connection free within {self._timeout} s") from None

    async def __aexit__(self, *exc_info: object) -> None:
        self._slots.release()


def fair_gate(settings: Settings) -> FairGate:
    return FairGate(settings.db_pool_size + settings.db_max_overflow, settings.db_pool_timeout_seconds)


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """One connection and transaction per request: commit on success, roll back on any error.

    Used with `scope="function"` so the commit happens before the response is sent: a 2xx
    means the write is durable.
    """
    engine: AsyncEngine = request.app.state.engine
    gate: FairGate = request.app.state.db_gate
    async with gate, engine.connect() as connection:
        try:
            yield connection
        except BaseException:
            await connection.rollback()
            raise
        else:
            await connection.commit()
