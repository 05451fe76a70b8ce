"""Promises that span worker processes, against a real `todo-api serve --workers 2`.

Quotas are enforced by PostgreSQL in the statement that inserts (under the user row's lock), so
they hold whichever worker serves each create, sequentially or at once. An account deleted through
one worker is gone for every worker: a worker whose identity cache still holds the old id answers
as if the account were fresh, and creates that were in flight during the deletion leave nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tests.faults.servers import HANG, ApiServer, holding, start_api_server, wait_for_lock_waiters
from todo_api.models import Todo, TodoList, User
from todo_api.ratelimit import FLUSH_SECONDS

pytestmark = pytest.mark.slow

TODO_CAP, LIST_CAP = 20, 5


@pytest.fixture(scope="module")
def two_workers(database_url: str, service_env: dict[str, str], signer: Any) -> Iterator[ApiServer]:
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "MAX_TODOS_PER_USER": str(TODO_CAP),
        "MAX_LISTS_PER_USER": str(LIST_CAP),
        # The caps are under test, not the pool: 50 creates of one user take turns on its row.
        "DB_POOL_TIMEOUT_SECONDS": "20",
    }
    server = start_api_server(env, {"Authorization": f"Bearer {signer.token('readiness')}"}, workers=2)
    yield server
    server.stop()


async def _fresh(server: ApiServer, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
    """One request on a new connection (so the kernel may hand it to either worker)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as client:
        return await client.request(method, path, headers=headers, **kw)


async def _rows(engine: AsyncEngine, model: Any, subject: str) -> int:
    statement = select(func.count()).select_from(model).join(User, col(User.id) == model.user_id)
    async with engine.connect() as connection:
        return int((await connection.execute(statement.where(col(User.subject) == subject))).scalar_one())


async def test_the_todo_cap_holds_for_sequential_creates_on_fresh_connections(
    two_workers: ApiServer, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    subject = f"sequential-{uuid.uuid4()}"
    statuses = []
    for n in range(2 * TODO_CAP):
        created = await _fresh(two_workers, "POST", "/api/todos", auth(subject), json={"title": f"t{n}"})
        statuses.append(created.status_code)
    assert statuses == [201] * TODO_CAP + [409] * TODO_CAP
    assert await _rows(db_engine, Todo, subject) == TODO_CAP


@pytest.mark.parametrize(("path", "cap", "model"), [("/api/todos", TODO_CAP, Todo), ("/api/lists", LIST_CAP, TodoList)])
async def test_the_caps_hold_for_concurrent_creates(
    two_workers: ApiServer,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    path: str,
    cap: int,
    model: Any,
) -> None:
    subject = f"concurrent-{uuid.uuid4()}"
    headers = auth(subject)
    assert (await _fresh(two_workers, "GET", "/api/users/me", headers)).status_code == 200
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=two_workers.base_url, timeout=HANG, limits=limits) as client:
        # A body per request: list names are unique per user.
        bodies = [{"name": f"l{n}"} if model is TodoList else {"title": f"t{n}"} for n in range(50)]
        responses = await asyncio.gather(*(client.post(path, headers=headers, json=body) for body in bodies))
    assert sorted(response.status_code for response in responses) == [201] * cap + [409] * (50 - cap)
    assert await _rows(db_engine, model, subject) == cap


async def test_a_deleted_account_starts_afresh_on_every_worker(
    two_workers: ApiServer, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """Both workers cache the identity; after the deletion (through one of them) every request, on
    either, answers as a fresh account would: reads empty, creates in one new account, every read
    and edit on either worker sees that account at once (a worker that still holds the old id finds
    it gone: README, "Deleting an account"), no 5xx. Each request on a fresh connection: the kernel
    picks the worker."""
    subject = f"afresh-{uuid.uuid4()}"
    headers = auth(subject)
    for _ in range(8):  # warm both workers' identity caches
        created = await _fresh(two_workers, "POST", "/api/todos", headers, json={"title": "old"})
        assert created.status_code == 201
    assert (await _fresh(two_workers, "DELETE", "/api/users/me", headers)).status_code == 204
    for _ in range(6):
        listed = await _fresh(two_workers, "GET", "/api/todos", headers)
        assert listed.status_code == 200
        assert listed.json()["items"] == []
    # One create (one worker moves on to the new account there), then reads and edits on fresh
    # connections: the other worker, still holding the old id, serves some of them.
    created = await _fresh(two_workers, "POST", "/api/todos", headers, json={"title": "new"})
    assert created.status_code == 201
    todo_path = f"/api/todos/{created.json()['id']}"
    for n in range(8):
        listed = await _fresh(two_workers, "GET", "/api/todos", headers)
        assert [item["title"] for item in listed.json()["items"]] == ["new"]
        edited = await _fresh(two_workers, "PATCH", todo_path, headers, json={"completed": n % 2 == 0})
        assert edited.status_code == 200, edited.text
    ids = set()
    for _ in range(6):
        me = await _fresh(two_workers, "GET", "/api/users/me", headers)
        assert me.status_code == 200
        ids.add(me.json()["id"])
    assert len(ids) == 1
    assert await _rows(db_engine, Todo, subject) == 1


async def test_deleting_an_account_while_creates_are_in_flight_leaves_nothing(
    two_workers: ApiServer, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """40 creates are in flight (held on the user row's lock, or waiting for a connection) when the
    account is deleted: the deletion answers 204, each create 201 (it committed before, and the
    deletion took it) or 409, never 5xx, and no row of the account is left."""
    subject = f"in-flight-{uuid.uuid4()}"
    headers = auth(subject)
    first = await _fresh(two_workers, "POST", "/api/todos", headers, json={"title": "first"})
    assert first.status_code == 201
    async with db_engine.connect() as connection:
        user_id = (await connection.execute(select(col(User.id)).where(col(User.subject) == subject))).scalar_one()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=two_workers.base_url, timeout=HANG, limits=limits) as client:
        async with holding(db_engine, "SELECT 1 FROM users WHERE id = :id FOR UPDATE", id=user_id):
            body = {"title": "in flight"}
            creates = [asyncio.create_task(client.post("/api/todos", headers=headers, json=body)) for _ in range(40)]
            await wait_for_lock_waiters(db_engine, 15)  # at least one worker's whole pool is stuck on the lock
            await asyncio.sleep(0.5)  # the rest are received (waiting for a connection)
            deletion = asyncio.create_task(client.delete("/api/users/me", headers=headers))
            await asyncio.sleep(0.3)
        # The lock is released: the waiting creates commit in turn, then the deletion takes them all.
        assert (await deletion).status_code == 204
        statuses = [(await create).status_code for create in creates]
    assert set(statuses) <= {201, 409}, statuses
    for model in (Todo, TodoList):
        assert await _rows(db_engine, model, subject) == 0
    async with db_engine.connect() as connection:
        users = await connection.execute(select(func.count()).select_from(User).where(col(User.subject) == subject))
        assert users.scalar_one() == 0


RATE_LIMIT = 20
RATE_WINDOW = 3600  # fixed windows: the test must not straddle two (see `_within_one_window`)


async def _within_one_window(seconds: float) -> None:
    """Wait for the next window if fewer than `seconds` are left in this one."""
    left = RATE_WINDOW - time.time() % RATE_WINDOW
    if left < seconds:
        await asyncio.sleep(left + 0.5)


@pytest.fixture(scope="module")
def limited_workers(database_url: str, service_env: dict[str, str], signer: Any) -> Iterator[ApiServer]:
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
        "RATE_LIMIT_WINDOW_SECONDS": str(RATE_WINDOW),
    }
    server = start_api_server(env, {"Authorization": f"Bearer {signer.token('readiness')}"}, workers=2)
    yield server
    server.stop()


async def test_the_rate_limit_admits_at_most_workers_times_the_limit_and_then_refuses_on_every_worker(
    limited_workers: ApiServer, auth: Callable[..., dict[str, str]]
) -> None:
    """Each worker admits from its own count plus the shared total it last read (no round trip per
    request): a burst and what follows get at most 2 × the limit through two workers, and once both
    have shared their counts, every worker refuses."""
    headers = auth(f"burst-{uuid.uuid4()}")
    await _within_one_window(120)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=limited_workers.base_url, timeout=HANG, limits=limits) as client:
        burst = await asyncio.gather(*(client.get("/api/users/me", headers=headers) for _ in range(100)))
    statuses = [response.status_code for response in burst]
    assert set(statuses) <= {200, 429}
    assert RATE_LIMIT <= statuses.count(200) <= 2 * RATE_LIMIT
    # A worker's view of the shared total is what it read at its last flush: a worker that flushed
    # before the other (or admitted nothing in the burst) may admit a few more before its next flush
    # teaches it the total. Never more than 2 × the limit in all, and then only 429s everywhere.
    later = []
    for _ in range(3):
        await asyncio.sleep(3 * FLUSH_SECONDS)
        later += [(await _fresh(limited_workers, "GET", "/api/users/me", headers)).status_code for _ in range(6)]
    assert statuses.count(200) + later.count(200) <= 2 * RATE_LIMIT
    assert later[-6:] == [429] * 6
