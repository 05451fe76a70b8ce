"""A token's user id comes from the worker's identity cache, or, on a miss, from the first statement of
the request's own transaction: a miss never costs a transaction of its own (README, round trips)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session

from tests.api import Api
from tests.conftest import AppClientFactory, count_users


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


async def test_a_cache_miss_is_resolved_inside_the_requests_transaction(
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


@pytest.mark.parametrize("path", ["/api/users/me", "/api/todos", "/api/lists"])
async def test_a_new_users_first_request_provisions_it_in_one_transaction(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], transactions: Transactions, path: str
) -> None:
    subject = f"newcomer-{uuid.uuid4()}"
    async with app_client() as fresh:
        transactions.clear()
        response = await fresh.get(path, headers=auth(subject))
        assert response.status_code == 200
        assert transactions.begun == 1
        assert _reads_users(transactions.statements[0])
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
