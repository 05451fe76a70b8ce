"""The engine: every transaction is a real one with the statement timeout; the pool keeps its connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import event, func, select

from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.db import create_engine


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

        @event.listens_for(app.state.engine.sync_engine.pool, "connect")
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
