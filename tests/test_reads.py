"""Every GET route runs its unit of work as a read (`CurrentUser.read` → `Database.read`: each
statement is its own implicit transaction, one round trip, nothing to commit), the lookup of an
identity this worker has not cached included; only a GET that has to provision its user or refresh
the stored profile (a write) runs again as one transaction (`Database.run`), as writes do."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from tests.conftest import AppClientFactory
from todo_api.app import create_app
from todo_api.config import load_settings
from todo_api.models import User
from todo_api.storage.database import Database


@pytest.fixture
def units_of_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ "run" or "read" for each unit of work a request ran as its user (the limiter's background
    flushes and other housekeeping are not counted)."""
    calls: list[str] = []
    original_run, original_read = Database.run, Database.read

    def as_user(work: Callable[..., Any]) -> bool:
        return "as_user" in getattr(work, "__qualname__", "")

    async def run(self: Database, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if as_user(work):
            calls.append("run")
        return await original_run(self, work, *args, **kwargs)

    async def read(self: Database, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if as_user(work):
            calls.append("read")
        return await original_read(self, work, *args, **kwargs)

    monkeypatch.setattr(Database, "run", run)
    monkeypatch.setattr(Database, "read", read)
    return calls


QUERIES = {"/api/reminders": "?from=2026-01-01T00:00:00Z&to=2026-01-05T00:00:00Z"}  # required there


def _get_routes(base_settings: dict[str, Any]) -> list[str]:
    app = create_app(load_settings(**base_settings))
    paths = [route.path for route in app.routes if isinstance(route, APIRoute) and "GET" in route.methods]
    assert len(paths) >= 9, paths  # todos, a todo, its completions, lists, a list, me, trash, sync, reminders
    return paths


async def test_every_get_route_runs_as_a_read_once_the_identity_is_cached(
    base_settings: dict[str, Any],
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    units_of_work: list[str],
) -> None:
    headers = auth(f"reads-{uuid.uuid4()}")
    async with app_client() as client:
        first = await client.get("/api/users/me", headers=headers)  # a new user: found missing, provisioned
        assert first.status_code == 200, first.text
        assert units_of_work == ["read", "run"]
        todo = await client.post("/api/todos", json={"title": "read me"}, headers=headers)
        listed = await client.post("/api/lists", json={"name": "read me"}, headers=headers)
        assert (todo.status_code, listed.status_code) == (201, 201)
        assert units_of_work == ["read", "run", "run", "run"]
        ids = {"todo_id": todo.json()["id"], "list_id": listed.json()["id"]}
        for template in _get_routes(base_settings):
            units_of_work.clear()
            response = await client.get(template.format(**ids) + QUERIES.get(template, ""), headers=headers)
            assert response.status_code == 200, (template, response.text)
            assert units_of_work == ["read"], template


async def test_a_known_user_not_cached_yet_is_found_in_the_read(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    units_of_work: list[str],
    db_engine: AsyncEngine,
) -> None:
    """A worker that has not seen this user yet (another worker provisioned it, or its cache entry
    expired) looks the account up in the read itself: no transaction, nothing written."""
    subject = f"known-{uuid.uuid4()}"
    headers = auth(subject, email="known@example.com")
    async with app_client() as client:
        created = await client.post("/api/todos", json={"title": "mine"}, headers=headers)
        assert created.status_code == 201, created.text
    before = await _user_row(db_engine, subject)
    units_of_work.clear()
    async with app_client() as client:  # a new worker: an empty identity cache
        me = await client.get("/api/users/me", headers=headers)
        todo = await client.get(f"/api/todos/{created.json()['id']}", headers=headers)
    assert (me.status_code, todo.status_code) == (200, 200), (me.text, todo.text)
    assert me.json()["id"] == str(before.id)
    assert todo.json()["title"] == "mine"
    assert units_of_work == ["read", "read"]  # the second from the cache the first one filled
    assert await _user_row(db_engine, subject) == before  # not even `updated_at` moved


async def test_a_read_that_must_refresh_the_profile_runs_as_a_write(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    units_of_work: list[str],
    db_engine: AsyncEngine,
) -> None:
    """Changed claims are a write: the read finds the stored profile stale, writes nothing, and the
    request runs again as one transaction that refreshes it."""
    subject = f"renamed-{uuid.uuid4()}"
    async with app_client() as client:
        first = await client.get("/api/users/me", headers=auth(subject, email="old@example.com", name="Old"))
        assert first.status_code == 200, first.text
        units_of_work.clear()
        renamed = await client.get("/api/users/me", headers=auth(subject, email="new@example.com", name="New"))
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["email"], renamed.json()["name"]) == ("new@example.com", "New")
    assert units_of_work == ["read", "run"]
    stored = await _user_row(db_engine, subject)
    assert (stored.email, stored.name, stored.id) == ("new@example.com", "New", uuid.UUID(first.json()["id"]))


async def _user_row(engine: AsyncEngine, subject: str) -> Any:
    async with engine.connect() as connection:
        statement = select(User.id, User.email, User.name, User.updated_at).where(User.subject == subject)
        return (await connection.execute(statement)).one()
