"""The engine: every transaction is a real one with the statement timeout; the pool keeps its connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Integer, cast, event, func, literal
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, select

from tests.conftest import count_users
from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.models import User
from todo_api.storage.database import WriteInRead, create_engine, database


async def test_every_transaction_of_a_checkout_is_begun_with_the_statement_timeout(
    base_settings: dict[str, Any],
) -> None:
    """psycopg runs in autocommit mode and the engine sends `BEGIN` itself: at checkout, and again
    for a second transaction on the same connection. Without that, the statements after the
    first commit would each commit on their own, unbounded."""
    engine = create_engine(load_settings(**base_settings, db_statement_timeout_ms=1234))
    probe = select(func.current_setting("statement_timeout"), func.txid_current())
    try:
        async with engine.connect() as connection:
            for _ in range(3):
                timeout, first_txid = (await connection.execute(probe)).one()
                again = (await connection.execute(probe)).one()
                await connection.commit()
                assert timeout == again[0] == "1234ms"
                assert again[1] == first_txid  # the same transaction, not two autocommitted statements
    finally:
        await engine.dispose()


async def test_each_unit_of_work_is_one_bounded_transaction_also_on_a_reused_connection(
    base_settings: dict[str, Any],
) -> None:
    """`Database.run`: every run's transaction opens with its first statement (fresh or reused
    connection alike); all statements of one run share one transaction with the timeout, and the
    next run is a new transaction."""
    settings = load_settings(**base_settings, db_statement_timeout_ms=1234, db_pool_size=1)
    engine = create_engine(settings)
    probe = select(func.current_setting("statement_timeout"), func.txid_current())

    def work(session: Session) -> tuple[str, int]:
        timeout, txid = session.exec(probe).one()
        assert session.exec(probe).one() == (timeout, txid)
        return timeout, txid

    try:
        db = database(settings, engine)
        runs = [await db.run(work) for _ in range(3)]
    finally:
        await engine.dispose()
    assert [timeout for timeout, _ in runs] == ["1234ms"] * 3
    assert len({txid for _, txid in runs}) == 3


async def test_a_unit_of_work_commits_when_it_returns_and_leaves_nothing_when_it_raises(
    base_settings: dict[str, Any], db_engine: AsyncEngine
) -> None:
    settings = load_settings(**base_settings)
    engine = create_engine(settings)

    def add_user(session: Session, subject: str, fail: bool = False) -> None:
        session.add(User(issuer="unit-of-work", subject=subject))
        session.flush()
        if fail:
            raise LookupError("after the write")

    try:
        db = database(settings, engine)
        await db.run(add_user, "kept")
        with pytest.raises(LookupError):
            await db.run(add_user, "rolled back", fail=True)
        await db.run(add_user, "after the failure")  # the connection came back clean
    finally:
        await engine.dispose()
    assert await count_users(db_engine, issuer="unit-of-work") == 2
    assert await count_users(db_engine, subject="rolled back") == 0


async def test_sustained_load_above_the_pool_size_opens_no_new_connections(
    base_settings: dict[str, Any], auth: Callable[..., dict[str, str]]
) -> None:
    """With the default settings, three times as many concurrent clients as pooled connections
    keep reusing the same connections. (SQLAlchemy closes an overflow connection as soon as it is
    returned to a full pool: with the former defaults, 10 + 5 overflow, this load reconnected
    every few requests — a new PostgreSQL backend, and on Neon a TLS handshake, each time.)"""
    settings = load_settings(**base_settings)
    slots = settings.db_pool_size + settings.db_max_overflow
    app = create_app(settings)
    opened = 0

    async with app.router.lifespan_context(app):

        @event.listens_for(app.state.context.engine.sync_engine.pool, "connect")
        def _count(*_: object) -> None:
            nonlocal opened
            opened += 1

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = auth()
            assert (await client.get("/api/users/me", headers=headers)).status_code == 200

            async def user_session() -> list[int]:
                return [(await client.get("/api/users/me", headers=headers)).status_code for _ in range(15)]

            results = await asyncio.gather(*(user_session() for _ in range(3 * slots)))

    assert {status for statuses in results for status in statuses} == {200}
    assert 1 <= opened <= slots


@pytest.mark.parametrize(("recycle", "connections"), [(1, 2), (None, 1)])
async def test_db_pool_recycle_seconds_replaces_older_connections(
    base_settings: dict[str, Any], auth: Callable[..., dict[str, str]], recycle: int | None, connections: int
) -> None:
    """README, configuration: DB_POOL_RECYCLE_SECONDS (default 300) replaces older connections. One
    pooled connection, two requests 1.5 s apart: with the setting at 1 s the second request gets a
    new connection, with the default it reuses the first."""
    overrides: dict[str, Any] = {"db_pool_size": 1}
    if recycle is not None:
        overrides["db_pool_recycle_seconds"] = recycle
    app = create_app(load_settings(**base_settings, **overrides))
    opened = 0
    async with app.router.lifespan_context(app):

        @event.listens_for(app.state.context.engine.sync_engine.pool, "connect")
        def _count(*_: object) -> None:
            nonlocal opened
            opened += 1

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = auth()
            assert (await client.get("/api/users/me", headers=headers)).status_code == 200
            first = opened
            await asyncio.sleep(1.5)  # the connection's age, not a measurement
            assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    assert first <= 1
    assert opened - first == connections - 1


async def _terminate(db_engine: AsyncEngine, pid: int) -> None:
    """End a backend as a restart or Neon's scale-to-zero would, and wait until it is gone."""
    async with db_engine.connect() as connection:
        assert (await connection.execute(select(func.pg_terminate_backend(pid)))).scalar_one()
        await connection.execute(select(func.pg_stat_clear_snapshot()))
        await connection.commit()
    for _ in range(100):
        async with db_engine.connect() as connection:
            alive = select(func.count()).select_from(func.pg_stat_get_activity(pid).table_valued("pid"))
            if not (await connection.execute(alive)).scalar_one():
                return
        await asyncio.sleep(0.05)


async def test_a_pooled_connection_that_died_is_replaced_and_the_work_runs_once_on_the_new_one(
    base_settings: dict[str, Any], db_engine: AsyncEngine
) -> None:
    """No pre-ping round trip: the transaction's first flight finds the dead connection before
    anything was changed, and the unit of work runs again on a new one; the caller sees no error."""
    settings = load_settings(**base_settings, db_pool_size=1, db_max_overflow=0)
    engine = create_engine(settings)
    runs: list[int] = []

    def add_user(session: Session, subject: str) -> int:
        session.add(User(issuer="replaced", subject=subject))
        session.flush()
        pid: int = session.exec(select(func.pg_backend_pid())).one()
        runs.append(pid)
        return pid

    try:
        db = database(settings, engine)
        first = await db.run(add_user, "before")
        await _terminate(db_engine, first)
        second = await db.run(add_user, "after")
    finally:
        await engine.dispose()
    assert second != first
    assert runs == [first, second]  # the failed attempt ended at its first statement
    assert await count_users(db_engine, issuer="replaced") == 2


async def test_a_connection_lost_after_the_first_statement_is_not_run_again(
    base_settings: dict[str, Any], db_engine: AsyncEngine, database_url: str
) -> None:
    """Only a failure of the first flight is run again: once a statement went through, a lost
    connection is the request's error (503), never a silent second run."""
    settings = load_settings(**base_settings, db_pool_size=1, db_max_overflow=0)
    engine = create_engine(settings)
    attempts = 0

    def add_user_then_lose_the_connection(session: Session) -> None:
        nonlocal attempts
        attempts += 1
        session.add(User(issuer="lost", subject="mid-transaction"))
        session.flush()
        pid = session.exec(select(func.pg_backend_pid())).one()
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        session.exec(select(func.pg_backend_pid())).one()

    try:
        db = database(settings, engine)
        with pytest.raises(sa_exc.DBAPIError) as raised:
            await db.run(add_user_then_lose_the_connection)
    finally:
        await engine.dispose()
    assert raised.value.connection_invalidated
    assert attempts == 1
    assert await count_users(db_engine, issuer="lost") == 0


async def test_a_first_statement_that_fails_or_is_large_leaves_the_connection_ready_for_the_next(
    base_settings: dict[str, Any],
) -> None:
    """The first flight (BEGIN, the timeout and the first statement, written at once before one
    Sync): a first statement the server refuses raises its own error, one larger than the socket
    takes at once (20 MB: written as the server reads it) is answered whole, and the one pooled
    connection serves the next bounded transaction either way."""
    settings = load_settings(**base_settings, db_statement_timeout_ms=4321, db_pool_size=1, db_max_overflow=0)
    engine = create_engine(settings)
    probe = select(func.current_setting("statement_timeout"), func.txid_current(), func.pg_backend_pid())
    large = "x" * 20_000_000

    def refused(session: Session) -> None:
        session.exec(select(cast(literal("not a number"), Integer))).one()

    def measure(session: Session) -> int:
        length: int = session.exec(select(func.length(literal(large)))).one()
        return length

    try:
        db = database(settings, engine)
        _, before, pid = await db.run(lambda session: session.exec(probe).one())
        with pytest.raises(sa_exc.DataError) as raised:
            await db.run(refused)
        assert getattr(raised.value.orig, "sqlstate", None) == "22P02"
        assert await db.run(measure) == len(large)
        timeout, after, same_pid = await db.run(lambda session: session.exec(probe).one())
    finally:
        await engine.dispose()
    assert (timeout, same_pid) == ("4321ms", pid)
    assert after != before


async def test_a_read_runs_each_statement_bounded_in_its_own_transaction_and_cannot_write(
    base_settings: dict[str, Any], db_engine: AsyncEngine, database_url: str
) -> None:
    """`Database.read`: no BEGIN and no COMMIT. Each statement carries the statement timeout
    (which holds: a slow one is cancelled), runs in its own implicit transaction, and leaves no
    transaction open behind it; a statement that would write is refused before it is sent."""
    settings = load_settings(**base_settings, db_statement_timeout_ms=300, db_pool_size=1, db_max_overflow=0)
    engine = create_engine(settings)
    probe = select(func.current_setting("statement_timeout"), func.txid_current(), func.pg_backend_pid())

    def two_reads(session: Session) -> tuple[tuple[str, int, int], tuple[str, int, int], str]:
        first = session.exec(probe).one()
        second = session.exec(probe).one()
        with psycopg.connect(database_url, autocommit=True) as other:
            row = other.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (first[2],)).fetchone()
        assert row is not None
        return first, second, row[0]

    def sleeps(session: Session) -> None:
        session.exec(select(func.pg_sleep(2))).one()

    def writes(session: Session) -> None:
        session.add(User(issuer="read", subject="written"))
        session.flush()

    try:
        db = database(settings, engine)
        first, second, state = await db.read(two_reads)
        with pytest.raises(sa_exc.OperationalError) as cancelled:
            await db.read(sleeps)
        with pytest.raises(WriteInRead):
            await db.read(writes)
        after = await db.run(lambda session: session.exec(probe).one())  # a transaction again
        again = await db.run(lambda session: session.exec(probe).one())
    finally:
        await engine.dispose()
    assert first[0] == second[0] == "300ms"
    assert first[1] != second[1]  # two transactions
    assert state == "idle"  # not "idle in transaction"
    assert getattr(cancelled.value.orig, "sqlstate", None) == "57014"
    assert await count_users(db_engine, issuer="read") == 0
    assert (after[0], after[2]) == ("300ms", first[2])  # the same pooled connection, bounded
    assert again[1] != after[1]
