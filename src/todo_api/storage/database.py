"""Engine, pool, and `Database.run` / `read`: one transaction per unit of work (the only place that commits)."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable
from typing import Any, Concatenate, Self

import psycopg
from psycopg.abc import PQGen
from psycopg.generators import send
from psycopg.pq import TransactionStatus
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.psycopg import (
    AsyncAdapt_psycopg_connection,
    AsyncAdapt_psycopg_cursor,
    PGDialectAsync_psycopg,
    PsycopgAdaptDBAPI,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_, greenlet_spawn
from sqlmodel import Session

from todo_api.config import Settings
from todo_api.storage.faults import (
    DEADLINE_GRACE_SECONDS,
    RETRYABLE_SQLSTATES,
    SECOND_RUN,
    Rerun,
    TransactionDeadlines,
    sqlstate,
)

logger = logging.getLogger("todo_api.database")

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
    parsed = driver_url(url or settings.database_url_value()).set(drivername=BOUNDED_DRIVER)
    return create_async_engine(
        parsed,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_recycle=settings.db_pool_recycle_seconds,
        hide_parameters=True,  # an error's text never carries a bound value (titles, emails) into logs
        connect_args=connect_args(settings, parsed),
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )


class _Cursor(AsyncAdapt_psycopg_cursor):
    """SQLAlchemy's psycopg cursor, sending a transaction's pending BEGIN with its first statement
    (in a read, the statement timeout with every statement)."""

    __slots__ = ()
    _adapt_connection: _Connection

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # psycopg's `AsyncCursor.__aenter__` only returns the cursor: skip the await

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        adapted = self._adapt_connection
        begin = adapted.pending_begin
        if begin is None:
            return await super()._execute_async(operation, parameters)  # type: ignore[no-untyped-call]
        if not adapted.reading:
            adapted.pending_begin = None
        connection = adapted._connection
        cursor: psycopg.AsyncCursor[Any] = self._cursor  # type: ignore[assignment]
        try:
            async with _Flight(connection, begin):
                result = await cursor.execute(operation, parameters)
        except psycopg.Error as exc:
            deadlines = adapted.deadlines
            expired = deadlines is not None and deadlines.expired(adapted)
            if exc.sqlstate is None and (connection.broken or connection.closed) and not expired:
                # The pooled connection was dead before this transaction wrote anything (its
                # first flight, or any statement of a read): what the pool's pre-ping used to
                # find. `Database` runs the unit of work again, once.
                raise ConnectionFound(*exc.args) from exc
            raise
        rows = cursor.pgresult
        if rows is not None and rows.status == self._adapt_connection.dbapi.ExecStatus.TUPLES_OK:
            self._rows = collections.deque(await cursor.fetchall())
        return result


class _Flight(psycopg.AsyncPipeline):
    """psycopg's pipeline mode for a transaction's first flight (a read's every statement: its
    own implicit transaction), written in one `send`.

    psycopg's own pipeline flushes after every statement: BEGIN, the timeout, the statement and
    the Sync went out as four writes, each waking the server (60-170 µs more CPU per request in
    `bench.cpu`, most of it in the kernel). Here the statements wait in libpq's buffer (the
    opening ones, then the one the cursor queues) and the Sync writes them at once; the results
    are read and handed to their cursor as psycopg does. Waiting only for the socket to take the
    rest of a large statement cannot stall: what precedes it (BEGIN, the timeout) has only a few
    bytes of results.
    """

    def __init__(self, connection: psycopg.AsyncConnection[Any], opening: tuple[bytes, ...]) -> None:
        super().__init__(connection)
        send_query = self.pgconn.send_query_params
        for statement in opening:  # queued as psycopg queues a command of its own
            self.command_queue.append(functools.partial(send_query, statement, None))
            self.result_queue.append(None)

    async def __aenter__(self) -> Self:
        connection = self._conn
        connection._check_connection_ok()
        connection._pipeline = self  # what `connection.pipeline()` does, with this class
        try:
            return await super().__aenter__()
        except BaseException:
            connection._pipeline = None
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await super().__aexit__(*exc_info)
        finally:
            self._conn._pipeline = None

    def _communicate_gen(self) -> PQGen[None]:
        # psycopg calls this after each statement a cursor queues: keep it queued until the Sync.
        return
        yield

    def _exit_gen(self) -> PQGen[None]:
        try:
            while self.command_queue:
                self.command_queue.popleft()()  # into libpq's buffer: pipeline mode does not flush
            self.pgconn.pipeline_sync()  # appends the Sync and writes the buffer
            self.result_queue.append(None)
            yield from send(self.pgconn)  # whatever the socket did not take at once
        finally:
            yield from self._fetch_gen(flush=False)  # after a Sync the server sends every result


class ConnectionFound(psycopg.OperationalError):
    """The connection was found dead by a transaction's first flight, before it changed anything."""


class _Connection(AsyncAdapt_psycopg_connection):
    __slots__ = ("deadlines", "pending_begin", "reading")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.pending_begin: tuple[bytes, ...] | None = None
        self.reading = False  # `BoundedPsycopgDialect.read_only`
        self.deadlines: TransactionDeadlines | None = None  # the dialect's, set on connect

    def cursor(self, name: str | None = None, /) -> Any:  # type: ignore[override]  # psycopg's signature
        if name:
            return super().cursor(name)  # type: ignore[no-untyped-call]
        return _Cursor(self)


def _adapted(dbapi_connection: Any) -> _Connection:
    """The adapted connection, from the pool's proxy or as it is."""
    if isinstance(dbapi_connection, PoolProxiedConnection):
        dbapi_connection = dbapi_connection.dbapi_connection
    return dbapi_connection  # type: ignore[no-any-return]


def _ended(dbapi_connection: Any) -> None:
    adapted = _adapted(dbapi_connection)
    adapted.pending_begin, adapted.reading = None, False


class WriteInRead(RuntimeError):
    """A statement that writes, in a unit of work run by `Database.read` (a programming error)."""


class _DBAPI(PsycopgAdaptDBAPI):
    def connect(self, *arg: Any, **kw: Any) -> Any:
        creator_fn = kw.pop("async_creator_fn", self.psycopg.AsyncConnection.connect)
        return await_(_Connection.create(self, creator_fn(*arg, **kw)))


class BoundedPsycopgDialect(PGDialectAsync_psycopg):
    """psycopg 3 (async) where every transaction opens with `BEGIN` and
    `SELECT set_config('statement_timeout', …, true)`, pipelined with its first statement: one
    round trip for the three.

    The bound is transaction-local and covers every statement of the transaction. Per transaction,
    not per session: behind PgBouncer in transaction mode (Neon's pooler) a session setting would
    land on whichever server connection ran it, and startup parameters are refused there.

    So that the driver does not send a `BEGIN` of its own (one more round trip), psycopg runs in
    autocommit mode; `do_begin` marks the connection, and its next statement goes out in one
    pipeline after the two opening ones (`_Cursor`). SQLAlchemy's commit and rollback reach
    psycopg, which sends COMMIT or ROLLBACK whenever the server reports an open transaction (and
    nothing for a transaction that never sent a statement).

    A read (`Database.read`, `read_only`) sends no BEGIN: each statement goes out with the
    timeout and its own Sync, an implicit transaction that ends there, so there is no COMMIT to
    wait for either: one round trip per statement.

    No pre-ping round trip: a pooled connection that died (database restarted, Neon scaled to zero)
    is found by the first flight, before the transaction changed anything; it raises
    `ConnectionFound`, SQLAlchemy invalidates the pool, and `Database` runs the unit of work again
    on a new connection, so no request sees a stale connection.

    A dialect rather than engine events: a `begin` listener puts SQLAlchemy's every execution on
    its event-dispatching path (~40 µs more CPU per request, bench/README.md).
    """

    supports_statement_cache = True

    def __init__(self, statement_timeout_ms: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]  # SQLAlchemy dialects are untyped
        statement = select(func.set_config("statement_timeout", str(statement_timeout_ms), True))
        compiled = statement.compile(dialect=self, compile_kwargs={"literal_binds": True})
        self._opening = (b"BEGIN", str(compiled).encode())  # no parameters
        self._bounded = self._opening[1:]
        seconds = statement_timeout_ms / 1000 + DEADLINE_GRACE_SECONDS if statement_timeout_ms else None
        self.deadlines = TransactionDeadlines(seconds)

    @classmethod
    def get_async_dialect_cls(cls, url: URL) -> type[BoundedPsycopgDialect]:
        return cls

    @classmethod
    def import_dbapi(cls) -> Any:
        from psycopg.pq import ExecStatus

        return _DBAPI(psycopg, ExecStatus)

    def on_connect(self) -> Callable[[Any], None]:
        setup = super().on_connect()  # type: ignore[no-untyped-call]

        def autocommit(dbapi_connection: Any) -> None:
            setup(dbapi_connection)
            dbapi_connection.autocommit = True
            dbapi_connection.deadlines = self.deadlines

        return autocommit

    def do_begin(self, dbapi_connection: Any) -> None:
        adapted = _adapted(dbapi_connection)
        if adapted.pending_begin is None and adapted.driver_connection.pgconn.transaction_status == IDLE:
            self.deadlines.arm(adapted)
            adapted.pending_begin = self._opening

    def read_only(self, dbapi_connection: Any) -> None:
        """Run the begun transaction's statements as a read (`Database.read`): each goes out with
        the statement timeout and a Sync, no BEGIN, so each is its own implicit transaction, and
        there is no COMMIT. Under READ COMMITTED a statement sees its own snapshot either way;
        what a read gives up is holding locks between statements, and writing (refused here)."""
        adapted = _adapted(dbapi_connection)
        if adapted.pending_begin is not self._opening:
            raise RuntimeError("read_only() needs a transaction that has not sent a statement yet")
        adapted.pending_begin, adapted.reading = self._bounded, True

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        if cursor._adapt_connection.reading and context is not None and (context.is_crud or context.isddl):
            raise WriteInRead("a unit of work run by Database.read() tried to write")
        cursor.execute(statement, parameters)

    def do_executemany(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        if cursor._adapt_connection.reading:
            raise WriteInRead("a unit of work run by Database.read() tried to write")
        super().do_executemany(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    # The transaction's deadline ends with it (COMMIT, ROLLBACK), or with its connection.
    def do_commit(self, dbapi_connection: Any) -> None:
        try:
            _ended(dbapi_connection)
            # A read (or a transaction that sent nothing) left no transaction open on the server:
            # psycopg would send nothing either, so skip the trip through the event loop.
            if dbapi_connection.driver_connection.pgconn.transaction_status != IDLE:
                super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self.deadlines.disarm(dbapi_connection)

    def do_rollback(self, dbapi_connection: Any) -> None:
        try:
            _ended(dbapi_connection)
            # The pool resets every returned connection with a rollback; after a COMMIT there is
            # nothing to roll back (psycopg would send nothing either), so skip the trip through the
            # event loop. A connection in or after a failed transaction, or in doubt, rolls back.
            if dbapi_connection.driver_connection.pgconn.transaction_status != IDLE:
                super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]
        finally:
            self.deadlines.disarm(dbapi_connection)

    def do_close(self, dbapi_connection: Any) -> None:
        self.deadlines.disarm(dbapi_connection)
        super().do_close(dbapi_connection)  # type: ignore[no-untyped-call]

    def do_terminate(self, dbapi_connection: Any) -> None:
        self.deadlines.disarm(dbapi_connection)
        super().do_terminate(dbapi_connection)  # type: ignore[no-untyped-call]


BOUNDED_DRIVER = "postgresql+psycopg_bounded"
registry.register("postgresql.psycopg_bounded", __name__, BoundedPsycopgDialect.__name__)


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


class Database:
    """The app's one way into PostgreSQL: `await database.run(work, *args)` calls
    `work(session, *args)`, a plain function, with a SQLModel `Session` that is one transaction on
    one pooled connection. It commits when `work` returns (before the response is sent: a 2xx means
    the write is durable) and rolls back when it raises; nothing else commits. Admission is first
    come, first served (`FairGate`). Requests, the rate limiter's flushes, housekeeping and the
    healthcheck all come through here.

    Why a unit of work handed to `run`, rather than a session from a `yield` dependency: the work
    runs in one greenlet with a synchronous `Session` (the bridge `AsyncSession` itself is built
    on), so SQLAlchemy's async layer is paid once per transaction instead of once per statement,
    commit and close (~150-200 µs less CPU per request, bench/README.md). Handlers still get the
    `Database` by dependency injection and stay one line: `await db.run(service.fn, …)`.
    """

    def __init__(self, engine: AsyncEngine, gate: FairGate) -> None:
        self._sync_engine = engine.sync_engine
        self._dialect: BoundedPsycopgDialect = engine.dialect  # type: ignore[assignment]
        self._gate = gate

    async def run[**P, T](self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._gate:
            result: T = await greenlet_spawn(self._retried, lambda session: work(session, *args, **kwargs))
            return result

    async def read[**P, T](self, work: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` for work that only reads: each statement is its own implicit transaction, sent
        with the statement timeout in one flight, and nothing is committed, so a one-statement
        read is one round trip instead of two (`BoundedPsycopgDialect.read_only`). Under READ
        COMMITTED every statement sees its own snapshot in a transaction too; a statement that
        would write raises `WriteInRead` instead."""
        async with self._gate:
            result: T = await greenlet_spawn(
                self._retried, lambda session: work(session, *args, **kwargs), read_only=True
            )
            return result

    def _retried[T](self, work: Callable[[Session], T], *, read_only: bool = False) -> T:
        """Run the unit of work again, once, when PostgreSQL aborted it as a serialization failure or
        a deadlock victim: the server rolled all of it back and nothing has reached the client yet
        (`work` only builds the response), so a second run is safe and usually succeeds."""
        try:
            return self._unit_of_work(work, read_only=read_only)
        except Rerun:
            logger.info("transaction run again: a concurrent write made a read stale")
        except sa_exc.DBAPIError as exc:
            if isinstance(exc.orig, ConnectionFound):
                logger.info("transaction run again on a new connection: the pooled one was closed")
            elif sqlstate(exc) in RETRYABLE_SQLSTATES:
                logger.info("transaction retried after SQLSTATE %s", sqlstate(exc))
            else:
                raise
        return self._unit_of_work(work, second_run=True, read_only=read_only)

    def _unit_of_work[T](self, work: Callable[[Session], T], *, second_run: bool = False, read_only: bool = False) -> T:
        # Nothing is loaded into the identity map (statements select columns), so there is nothing
        # to flush automatically or to expire after the commit.
        with Session(self._sync_engine, autoflush=False, expire_on_commit=False) as session:
            if second_run:
                session.info[SECOND_RUN] = True
            if read_only:
                self._dialect.read_only(session.connection().connection)
            result = work(session)  # closing the session rolls back what was not committed
            if not read_only:  # a read left nothing open to commit: closing the session ends it
                session.commit()
            return result


def database(settings: Settings, engine: AsyncEngine) -> Database:
    return Database(
        engine, FairGate(settings.db_pool_size + settings.db_max_overflow, settings.db_pool_timeout_seconds)
    )
