"""Behind PgBouncer in TRANSACTION pooling mode (what Neon's `-pooler` host is).

Many app connections share a handful of server connections, each transaction landing on whichever
one is free: session state does not survive between transactions, and a server-side prepared
statement made in one transaction is missing (or already taken) in the next. The app must never
prepare (`prepare_threshold=None`) and must scope its settings to the transaction (`SET LOCAL`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event

from tests.faults.conftest import RunningAppFactory
from tests.faults.servers import (
    PGBOUNCER_MISSING,
    Pgbouncer,
    PostgresInstance,
    embedded_binaries,
    pgbouncer_binary,
    pgbouncer_version,
    run_checked,
    start_pgbouncer,
)
from todo_api.storage import migrate

DATABASE = "todo"
SERVER_POOL_SIZE = 5
MAX_CLIENT_CONN = 200
CLIENTS = 50
TARGET_STATEMENTS = 10_000
LOAD_TIMEOUT_SECONDS = 600  # fails only if the load hangs far beyond expectation


@dataclass
class Pooled:
    backend: PostgresInstance
    bouncer: Pgbouncer
    version: tuple[int, int]

    @property
    def url(self) -> str:
        return self.bouncer.url(DATABASE)

    def admin(self, command: str) -> list[dict[str, str]]:
        """A PgBouncer console command (simple query protocol, hence psql), rows as dicts."""
        output = run_checked(
            [
                str(embedded_binaries() / "psql"),
                "--csv",
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.bouncer.port),
                "-U",
                "postgres",
                "-d",
                "pgbouncer",
                "-c",
                command,
            ],
            timeout=30,
            as_service=False,
            what=f"pgbouncer console {command}",
        )
        return list(csv.DictReader(io.StringIO(output)))

    def rows_for_database(self, command: str) -> list[dict[str, str]]:
        return [row for row in self.admin(command) if row.get("database") == DATABASE]

    def totals(self) -> tuple[int, int]:
        """(queries, transactions) PgBouncer has relayed for the database so far."""
        rows = self.rows_for_database("SHOW STATS")  # no row before the first client
        if not rows:
            return 0, 0
        return int(rows[0]["total_query_count"]), int(rows[0]["total_xact_count"])


@pytest.fixture(scope="module")
def pooled() -> Iterator[Pooled]:
    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip(PGBOUNCER_MISSING)
    version = pgbouncer_version(binary)
    backend = PostgresInstance.create(embedded_binaries(), prefix="pgbouncer-backend-")
    try:
        backend.start()
        backend.admin(f"CREATE DATABASE {DATABASE}")
        migrate.upgrade(backend.tcp_url(DATABASE))  # directly: DDL does not need the pooler
        bouncer = start_pgbouncer(
            binary,
            backend_port=backend.port,
            database=DATABASE,
            pool_size=SERVER_POOL_SIZE,
            max_client_conn=MAX_CLIENT_CONN,
        )
        try:
            print(
                f"\n[pgbouncer] PgBouncer {version[0]}.{version[1]} (transaction pooling, {SERVER_POOL_SIZE} server"
                f" connections) on :{bouncer.port} -> PostgreSQL {backend.major} on :{backend.port}"
            )
            yield Pooled(backend, bouncer, version)
        finally:
            bouncer.stop()
    finally:
        backend.destroy()


@dataclass
class LoadStats:
    statements: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    transport_errors: int = 0

    def record(self, response: httpx.Response, expected: int) -> bool:
        self.requests += 1
        self.statuses[response.status_code] += 1
        if response.status_code != expected:
            request = response.request
            self.failures.append(f"{request.method} {request.url.path} -> {response.status_code} {response.text[:300]}")
            return False
        return True


async def test_ten_thousand_statements_through_transaction_pooling(
    pooled: Pooled, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    stats = LoadStats()
    queries_before, transactions_before = pooled.totals()

    # More app connections than PgBouncer has server connections: transactions must interleave.
    async with running_app(
        database_url=pooled.url,
        db_pool_size=20,
        db_max_overflow=10,
        db_pool_timeout_seconds=30,
        db_statement_timeout_ms=30_000,
    ) as running:

        def count(*_args: Any) -> None:
            stats.statements += 1

        event.listen(running.engine.sync_engine, "before_cursor_execute", count)
        client = running.client

        async def one_client(number: int) -> None:
            headers = auth(f"pgbouncer-{number}-{uuid.uuid4().hex[:8]}")
            round_ = 0
            while stats.statements < TARGET_STATEMENTS:
                round_ += 1
                try:
                    created = await client.post("/api/todos", json={"title": f"c{number} r{round_}"}, headers=headers)
                    if not stats.record(created, 201):
                        continue
                    path = f"/api/todos/{created.json()['id']}"
                    stats.record(await client.get(path, headers=headers), 200)
                    stats.record(await client.patch(path, json={"completed": True}, headers=headers), 200)
                    stats.record(await client.get("/api/todos", params={"limit": 20}, headers=headers), 200)
                except httpx.TransportError as exc:
                    stats.transport_errors += 1
                    stats.failures.append(f"transport error: {exc!r}")
                if len(stats.failures) > 50:
                    return  # broken: stop early, the assertions below report it

        started = time.monotonic()
        async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
            await asyncio.gather(*(one_client(number) for number in range(CLIENTS)))
        elapsed = time.monotonic() - started
        event.remove(running.engine.sync_engine, "before_cursor_execute", count)

        # While the app's pool is still open: how many client connections shared how few servers.
        clients = await asyncio.to_thread(pooled.rows_for_database, "SHOW CLIENTS")
        servers = await asyncio.to_thread(pooled.rows_for_database, "SHOW SERVERS")

    queries_after, transactions_after = pooled.totals()
    pooler_queries = queries_after - queries_before
    pooler_transactions = transactions_after - transactions_before
    logs = pooled.bouncer.log_text() + pooled.backend.log_text()
    print(
        f"\n[pgbouncer] {stats.statements} statements executed by the app's engine,"
        f" {pooler_queries} queries / {pooler_transactions} transactions relayed by PgBouncer,"
        f" {stats.requests} requests from {CLIENTS} clients in {elapsed:.1f} s"
        f" ({stats.requests / elapsed:.0f} req/s, {stats.statements / elapsed:.0f} statements/s);"
        f" statuses {dict(stats.statuses)}, {len(stats.failures)} failures, {stats.transport_errors} transport errors;"
        f" {len(clients)} app connections multiplexed onto {len(servers)} server connections;"
        f" 'prepared statement' in logs: {logs.count('prepared statement')}"
    )
    assert stats.failures == [], "\n".join(stats.failures[:10])
    assert stats.transport_errors == 0
    assert set(stats.statuses) <= {200, 201}
    assert stats.statements >= TARGET_STATEMENTS
    assert pooler_queries >= TARGET_STATEMENTS
    assert "prepared statement" not in logs
    assert len(servers) <= SERVER_POOL_SIZE
    assert len(clients) > SERVER_POOL_SIZE, "the load never needed more connections than the server pool"


async def test_server_side_prepares_would_break_behind_the_pooler(pooled: Pooled) -> None:
    """Control: the same pooler does break a client that prepares, so the test above can tell."""
    if pooled.version >= (1, 21):
        pytest.skip(f"PgBouncer {pooled.version} can track protocol-level prepared statements itself")

    async def run(prepare_threshold: int | None) -> str | None:
        first = await psycopg.AsyncConnection.connect(
            pooled.url, autocommit=True, prepare_threshold=prepare_threshold, connect_timeout=10
        )
        second = await psycopg.AsyncConnection.connect(
            pooled.url, autocommit=True, prepare_threshold=prepare_threshold, connect_timeout=10
        )
        try:
            for round_ in range(20):
                for number, connection in enumerate((first, second)):
                    # Each autocommit statement is its own transaction: the server may change.
                    await connection.execute(f"SELECT {number} + %s".encode(), [round_])
        except psycopg.Error as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            await first.close()
            await second.close()
        return None

    preparing = await run(prepare_threshold=0)
    print(f"\n[pgbouncer] a client that prepares: {preparing}")
    assert preparing is not None
    assert "prepared statement" in preparing
    assert await run(prepare_threshold=None) is None  # the app's setting: fine
