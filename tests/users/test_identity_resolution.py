"""A token's user id comes from the worker's identity cache, or, on a miss, from the first statement of
the request's own unit of work (its read, or its transaction): a miss never costs a unit of work of
its own (README, round trips), except a new user's first GET, whose read finds no account."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session

from tests.api import Api
from tests.conftest import AppClientFactory, count_users
from tests.faults.servers import holding, wait_for_lock_waiters
from tests.keys import ISSUER
from todo_api.app import create_app
from todo_api.config import load_settings


@dataclass
class Transactions:
    """Transactions begun and the tables each statement named, in every SQLModel session."""

    begun: int = 0
    statements: list[set[str]] = field(default_factory=list)

    def begin(self, *_: object) -> None:
        self.begun += 1

    def execute(self, state: ORMExecuteState) -> None:
        assert isinstance(state.statement, ClauseElement)
        found = find_tables(state.statement, include_crud=True, include_selects=True)
        self.statements.append({table.name for table in found if isinstance(table, Table)})

    def clear(self) -> None:
        self.begun = 0
        self.statements.clear()


@pytest.fixture
def transactions() -> Iterator[Transactions]:
    seen = Transactions()
    event.listen(Session, "after_begin", seen.begin)
    event.listen(Session, "do_orm_execute", seen.execute)
    try:
        yield seen
    finally:
        event.remove(Session, "after_begin", seen.begin)
        event.remove(Session, "do_orm_execute", seen.execute)


def _reads_users(tables: set[str]) -> bool:
    return tables == {"users"}


async def test_a_cache_miss_is_resolved_inside_the_requests_unit_of_work(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], transactions: Transactions
) -> None:
    headers = auth(f"cold-{uuid.uuid4()}")
    async with app_client() as warm:
        todo = await Api(warm, headers).create_todo(title="t")
    async with app_client() as cold:  # a worker that has never seen this identity
        transactions.clear()
        response = await cold.get(f"/api/todos/{todo['id']}", headers=headers)
        assert response.status_code == 200
        assert transactions.begun == 1
        assert [_reads_users(s) for s in transactions.statements] == [True, False]  # the look-up, the read

        transactions.clear()  # the miss filled the cache: the next request is its own work only
        assert (await cold.get(f"/api/todos/{todo['id']}", headers=headers)).status_code == 200
        assert transactions.begun == 1
        assert [_reads_users(s) for s in transactions.statements] == [False]


async def test_me_on_a_cache_miss_answers_from_the_look_up(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], transactions: Transactions
) -> None:
    """The identity look-up reads the whole account row: `GET /api/users/me` answers from it (one
    statement), and still reads the row by id when the cache knew the id."""
    subject = f"cold-me-{uuid.uuid4()}"
    headers = auth(subject, email=f"{subject}@example.com", name="Cold Me")
    async with app_client() as warm:
        provisioned = (await warm.get("/api/users/me", headers=headers)).json()
    async with app_client() as cold:
        transactions.clear()
        response = await cold.get("/api/users/me", headers=headers)
        assert response.status_code == 200
        assert response.json() == provisioned
        assert [_reads_users(s) for s in transactions.statements] == [True]

        transactions.clear()  # cached now: the read by id
        assert (await cold.get("/api/users/me", headers=headers)).json() == provisioned
        assert [_reads_users(s) for s in transactions.statements] == [True]


@pytest.mark.parametrize("path", ["/api/users/me", "/api/todos", "/api/lists"])
async def test_a_new_users_first_request_provisions_it_in_one_transaction(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], transactions: Transactions, path: str
) -> None:
    """A GET looks its identity up in its read (`CurrentUser.read`); finding no account there, it
    has written nothing and runs again as one transaction that provisions the user and reads."""
    subject = f"newcomer-{uuid.uuid4()}"
    async with app_client() as fresh:
        transactions.clear()
        response = await fresh.get(path, headers=auth(subject))
        assert response.status_code == 200
        assert transactions.begun == 2  # the read that found no account, then the transaction
        assert _reads_users(transactions.statements[0])
        assert _reads_users(transactions.statements[1])  # the transaction starts with the identity
        if path == "/api/users/me":  # the read's look-up; the transaction's, the tombstones, the upsert,
            # whose row is the answer: nothing is read after it
            assert [_reads_users(s) for s in transactions.statements] == [True, True, False, True]
        me = (await fresh.get("/api/users/me", headers=auth(subject))).json()
        assert me["subject"] == subject
        if path == "/api/users/me":
            assert response.json() == me


async def test_a_first_request_that_fails_provisions_nothing(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """The provisioning and the work are one transaction: a refused first request leaves no account
    behind, and the next one provisions it as usual."""
    subject = f"refused-{uuid.uuid4()}"
    headers = auth(subject)
    async with app_client() as fresh:
        missing = await fresh.patch(f"/api/todos/{uuid.uuid4()}", json={"title": "x"}, headers=headers)
        assert missing.status_code == 404
        assert await count_users(db_engine, subject=subject) == 0
        first = (await fresh.get("/api/users/me", headers=headers)).json()
        assert await count_users(db_engine, subject=subject) == 1
        assert (await fresh.get("/api/users/me", headers=headers)).json() == first


async def test_a_request_that_waited_out_its_accounts_deletion_on_a_cold_worker_is_refused(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """A worker that never cached the identity receives a create, which waits for a connection while
    the account is deleted through another worker: when it reaches the database it finds no user
    row, and the tombstone says the deletion came after it arrived: 409, no fresh account. A request
    sent after the deletion starts the fresh account as usual."""
    subject, blocker = f"raced-{uuid.uuid4()}", f"blocker-{uuid.uuid4()}"
    async with app_client() as warm, app_client(db_pool_size=1) as cold:
        assert (await warm.post("/api/todos", json={"title": "old"}, headers=auth(subject))).status_code == 201
        blocker_id = (await warm.get("/api/users/me", headers=auth(blocker))).json()["id"]
        async with holding(db_engine, "SELECT 1 FROM users WHERE id = :id FOR UPDATE", id=blocker_id):
            # The cold worker's one connection waits on the blocker's lock ...
            stuck = asyncio.create_task(cold.post("/api/todos", json={"title": "b"}, headers=auth(blocker)))
            await wait_for_lock_waiters(db_engine)
            # ... so this create arrives, then waits for it while the account is deleted.
            raced = asyncio.create_task(cold.post("/api/todos", json={"title": "raced"}, headers=auth(subject)))
            await asyncio.sleep(0.2)
            assert (await warm.delete("/api/users/me", headers=auth(subject))).status_code == 204
        assert (await stuck).status_code == 201
        response = await raced
        assert (response.status_code, response.json()["code"]) == (409, "account_deleted")
        assert await count_users(db_engine, subject=subject) == 0

        later = await cold.post("/api/todos", json={"title": "new"}, headers=auth(subject))
        assert later.status_code == 201
        titles = [todo["title"] for todo in (await warm.get("/api/todos", headers=auth(subject))).json()["items"]]
        assert titles == ["new"]


async def test_an_id_cached_while_the_request_waited_is_checked_like_one_cached_before(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    base_settings: dict[str, Any],
) -> None:
    """A worker that had not cached the identity receives a GET, which waits for a connection. Meanwhile
    another request of that worker, whose read of the account came before the account was deleted
    (through another worker, before the GET arrived), caches the deleted account's id. The GET takes
    the id from the cache when it reaches the database (one statement fewer): it must check it as it
    checks an id cached before it arrived, so it answers as the new account (200), not 404."""
    subject, blocker = f"refilled-{uuid.uuid4()}", f"blocker-{uuid.uuid4()}"
    async with app_client() as warm:
        old = (await warm.get("/api/users/me", headers=auth(subject))).json()
        assert (await warm.delete("/api/users/me", headers=auth(subject))).status_code == 204
        created = await warm.post("/api/todos", json={"title": "new"}, headers=auth(subject))
        assert created.status_code == 201
        todo = created.json()
        blocker_id = (await warm.get("/api/users/me", headers=auth(blocker))).json()["id"]
    app = create_app(load_settings(**{**base_settings, "db_pool_size": 1}))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as cold:
        async with holding(db_engine, "SELECT 1 FROM users WHERE id = :id FOR UPDATE", id=blocker_id):
            # The cold worker's one connection waits on the blocker's lock ...
            stuck = asyncio.create_task(cold.post("/api/todos", json={"title": "b"}, headers=auth(blocker)))
            await wait_for_lock_waiters(db_engine)
            # ... so this GET arrives (its identity is not cached), then waits for it ...
            raced = asyncio.create_task(cold.get(f"/api/todos/{todo['id']}", headers=auth(subject)))
            await asyncio.sleep(0.2)
            # ... while the other request caches the old account's id, as it read it.
            stale = {"id": uuid.UUID(old["id"]), "email": old["email"], "name": old["name"]}
            app.state.context.identities.put(SimpleNamespace(issuer=ISSUER, subject=subject, **stale))
        assert (await stuck).status_code == 201
        response = await raced
    assert response.status_code == 200, response.text
    assert response.json()["id"] == todo["id"]
