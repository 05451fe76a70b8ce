"""A database that is busy, slow, down or restarting gives clients a fast 503 with `Retry-After`:
never a 500, never a hang, never an acknowledged write that is then lost.

Real faults only: a real pool held busy by a real row lock, a real table lock against a real
statement timeout, a closed port, a port that accepts and never answers, and a real PostgreSQL
stopped and started again under a real `todo-api serve` process.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.conftest import RunningAppFactory
from tests.faults.servers import (
    HANG,
    ApiServer,
    PostgresInstance,
    free_port,
    holding,
    start_api_server,
    wait_for_lock_waiters,
)
from todo_api.storage import migrate

FORBIDDEN_IN_BODIES = ("psycopg", "SQL", "Traceback", "sqlalchemy", "postgres", "127.0.0.1", "Error")


def assert_unavailable(response: httpx.Response) -> None:
    """503, `Retry-After`, the request id, and nothing about the internals."""
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body == {
        "detail": "Service temporarily unavailable",
        "code": "database_unavailable",
        "request_id": response.headers["X-Request-ID"],
    }
    for word in FORBIDDEN_IN_BODIES:
        assert word not in response.text


type Attempt = Callable[[], Awaitable[httpx.Response]]


async def timed(attempt: Attempt) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    async with asyncio.timeout(HANG):
        response = await attempt()
    return response, time.monotonic() - started


# --- (a) pool exhausted -------------------------------------------------------------------------


async def test_pool_exhausted_gives_503_not_a_hang(
    running_app: RunningAppFactory, db_engine: AsyncEngine, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth()
    async with running_app(
        db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=1, db_statement_timeout_ms=20_000
    ) as running:
        client = running.client
        created = await client.post("/api/todos", json={"title": "held"}, headers=headers)
        assert created.status_code == 201, created.text
        todo_id = created.json()["id"]

        async with holding(db_engine, "SELECT id FROM todos WHERE id = :id FOR UPDATE", id=todo_id) as lock:
            # The only pooled connection now waits on our row lock inside this PATCH.
            stuck = asyncio.create_task(client.patch(f"/api/todos/{todo_id}", json={"title": "after"}, headers=headers))
            try:
                await wait_for_lock_waiters(db_engine)
                response, elapsed = await timed(lambda: client.get("/api/todos", headers=headers))
                assert_unavailable(response)
                print(f"\n[faults] pool exhausted (size 1, pool timeout 1 s): 503 after {elapsed:.2f} s")
                assert not stuck.done()
                await lock.rollback()  # release: the stuck request finishes normally
                patched = await asyncio.wait_for(stuck, HANG)
            finally:
                if not stuck.done():
                    stuck.cancel()
        assert patched.status_code == 200, patched.text
        assert patched.json()["title"] == "after"
        after = await client.get("/api/todos", headers=headers)
        assert after.status_code == 200, after.text


# --- (b) slow database: statement timeout -------------------------------------------------------


async def test_locked_table_gives_503_within_the_statement_timeout_then_recovers(
    running_app: RunningAppFactory, db_engine: AsyncEngine, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth()
    async with running_app(db_statement_timeout_ms=500) as running:
        client = running.client
        created = await client.post("/api/todos", json={"title": "before the lock"}, headers=headers)
        assert created.status_code == 201, created.text
        path = f"/api/todos/{created.json()['id']}"

        attempts: dict[str, Attempt] = {
            "list": lambda: client.get("/api/todos", headers=headers),
            "read": lambda: client.get(path, headers=headers),
            "create": lambda: client.post("/api/todos", json={"title": "during the lock"}, headers=headers),
            "update": lambda: client.patch(path, json={"title": "during the lock"}, headers=headers),
        }
        timings: dict[str, float] = {}
        async with holding(db_engine, "LOCK TABLE todos IN ACCESS EXCLUSIVE MODE"):
            for name, attempt in attempts.items():
                response, timings[name] = await timed(attempt)
                assert_unavailable(response)
        print(
            "\n[faults] todos locked, statement timeout 500 ms: 503 after "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
        )

        # Lock released: everything works again and nothing was half-written meanwhile.
        listed = await client.get("/api/todos", headers=headers)
        assert listed.status_code == 200, listed.text
        assert [item["title"] for item in listed.json()["items"]] == ["before the lock"]
        for name, attempt in attempts.items():
            response = await attempt()
            assert response.status_code in {200, 201}, (name, response.text)


# --- (c) database down ----------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener completes TCP handshakes but never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port: int = listener.getsockname()[1]
        yield port


@pytest.mark.parametrize("fault", ["closed port", "silent port"])
async def test_database_down_gives_503_without_internals(
    fault: str, silent_port: int, running_app: RunningAppFactory, auth: Callable[..., dict[str, str]]
) -> None:
    port = free_port() if fault == "closed port" else silent_port
    headers = {**auth(), "X-Request-ID": f"down-{uuid.uuid4().hex[:8]}"}
    async with running_app(
        database_url=f"postgresql://postgres@127.0.0.1:{port}/todo", db_connect_timeout_seconds=2
    ) as running:
        client = running.client
        attempts: dict[str, Attempt] = {
            "me": lambda: client.get("/api/users/me", headers=headers),
            "list": lambda: client.get("/api/todos", headers=headers),
            "create": lambda: client.post("/api/todos", json={"title": "x"}, headers=headers),
        }
        timings = {}
        for name, attempt in attempts.items():
            response, timings[name] = await timed(attempt)
            assert_unavailable(response)
            assert response.headers["X-Request-ID"] == headers["X-Request-ID"]
    print(f"\n[faults] database down ({fault}): 503 after " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


# --- (d) database restarted under load ----------------------------------------------------------

WORKERS = 8
BASELINE_SECONDS = 2.0
OUTAGE_PAUSE_SECONDS = 1.5
AFTER_RECOVERY_SECONDS = 2.0
RECOVERY_LIMIT_SECONDS = 15.0


@dataclass
class RestartLoad:
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: dict[str, str] = field(default_factory=dict)  # id -> title, every 201
    unacknowledged_titles: list[str] = field(default_factory=list)  # every 503
    transport_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    back: float | None = None  # monotonic time the database was back up
    recovered: float | None = None  # monotonic time of the first 201 after that
    recovery: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


@pytest.fixture
def restartable(new_postgres: Callable[..., PostgresInstance]) -> PostgresInstance:
    instance = new_postgres(prefix="restart-")
    instance.admin("CREATE DATABASE todo")
    migrate.upgrade(instance.tcp_url("todo"))
    return instance


@pytest.fixture
def api_server(
    restartable: PostgresInstance, service_env: dict[str, str], auth: Callable[..., dict[str, str]]
) -> Iterator[ApiServer]:
    server = start_api_server({**service_env, "DATABASE_URL": restartable.tcp_url("todo")}, auth("readiness"))
    yield server
    server.stop()


async def test_database_restart_under_load_loses_no_acknowledged_write(
    restartable: PostgresInstance, api_server: ApiServer, auth: Callable[..., dict[str, str]]
) -> None:
    load = RestartLoad()
    stop = asyncio.Event()

    async def worker(number: int, client: httpx.AsyncClient) -> None:
        headers = auth(f"restart-{number}")
        sequence = 0
        while not stop.is_set():
            sequence += 1
            title = f"w{number}-{sequence}-{uuid.uuid4().hex[:8]}"
            try:
                response = await client.post("/api/todos", json={"title": title}, headers=headers)
            except httpx.TransportError as exc:
                load.transport_errors.append(repr(exc))
                await asyncio.sleep(0.05)
                continue
            load.statuses[response.status_code] += 1
            if response.status_code == 201:
                load.acknowledged[response.json()["id"]] = title
                now = time.monotonic()
                if load.back is not None and load.recovered is None and now > load.back:
                    load.recovered = now
                    load.recovery.set()
            elif response.status_code == 503:
                load.unacknowledged_titles.append(title)
                try:
                    assert_unavailable(response)
                except AssertionError as exc:  # keep the load going; reported below
                    load.unexpected.append(f"malformed 503: {exc}")
            else:
                load.unexpected.append(f"{response.status_code} {response.text[:300]}")
            await asyncio.sleep(0.01)  # moderate load: the machine is shared

    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    async with httpx.AsyncClient(base_url=api_server.base_url, timeout=HANG, limits=limits) as client:
        workers = [asyncio.create_task(worker(number, client)) for number in range(WORKERS)]
        try:
            await asyncio.sleep(BASELINE_SECONDS)
            before_outage = dict(load.statuses)
            stopping = time.monotonic()
            await asyncio.to_thread(restartable.stop, "fast")
            stopped = time.monotonic()
            await asyncio.sleep(OUTAGE_PAUSE_SECONDS)
            await asyncio.to_thread(restartable.start)
            back = load.back = time.monotonic()
            async with asyncio.timeout(RECOVERY_LIMIT_SECONDS):
                await load.recovery.wait()
            assert load.recovered is not None
            recovered = load.recovered
            await asyncio.sleep(AFTER_RECOVERY_SECONDS)
        finally:
            stop.set()
            async with asyncio.timeout(HANG):
                await asyncio.gather(*workers, return_exceptions=True)
    for task in workers:
        task.result()  # re-raise a failed assertion from a worker

    async with await psycopg.AsyncConnection.connect(restartable.tcp_url("todo"), connect_timeout=10) as connection:
        rows = await (
            await connection.execute(
                "SELECT id::text, title FROM todos WHERE id = ANY(%s::uuid[])", [list(load.acknowledged)]
            )
        ).fetchall()
        committed_anyway = (
            await (
                await connection.execute(
                    "SELECT count(*) FROM todos WHERE title = ANY(%s)", [load.unacknowledged_titles]
                )
            ).fetchone()
        ) or (0,)
    found: dict[str, str] = {row[0]: row[1] for row in rows}
    others = {status: count for status, count in load.statuses.items() if status not in {201, 503}}
    lost = {todo_id for todo_id, title in load.acknowledged.items() if found.get(todo_id) != title}

    print(
        f"\n[faults] restart under load ({WORKERS} workers): {load.requests} requests,"
        f" {load.statuses[201]} acknowledged (201), {load.statuses[503]} unavailable (503),"
        f" other statuses {others},"
        f" {len(load.transport_errors)} transport errors; before the outage {before_outage};"
        f" pg_ctl stop -m fast took {stopped - stopping:.2f} s, down {back - stopped:.2f} s (pause + start);"
        f" first 201 {recovered - back:.2f} s after the database was back"
        f" ({recovered - stopping:.2f} s after the stop began);"
        f" lost acknowledged writes: {len(lost)};"
        f" 503s whose write committed anyway: {committed_anyway[0]}"
    )
    assert load.unexpected == [], load.unexpected[:5]
    assert load.transport_errors == [], load.transport_errors[:5]
    assert set(load.statuses) <= {201, 503}
    assert load.statuses[503] > 0, "the outage was not observed: the test proves nothing"
    assert load.statuses[201] > 0
    assert lost == set()
    assert api_server.process.poll() is None, api_server.log_text()[-3000:]
