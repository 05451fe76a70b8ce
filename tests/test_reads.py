"""Every GET route runs its unit of work as a read (`CurrentUser.read` → `Database.read`: each
statement is its own implicit transaction, one round trip, nothing to commit), except a request
whose identity is not cached yet (resolving it may provision the user); a write runs as one
transaction (`Database.run`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.conftest import AppClientFactory
from todo_api.app import create_app
from todo_api.config import load_settings
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
        first = await client.get("/api/users/me", headers=headers)  # not cached yet: provisions
        assert first.status_code == 200, first.text
        assert units_of_work == ["run"]
        todo = await client.post("/api/todos", json={"title": "read me"}, headers=headers)
        listed = await client.post("/api/lists", json={"name": "read me"}, headers=headers)
        assert (todo.status_code, listed.status_code) == (201, 201)
        assert units_of_work == ["run", "run", "run"]
        ids = {"todo_id": todo.json()["id"], "list_id": listed.json()["id"]}
        for template in _get_routes(base_settings):
            units_of_work.clear()
            response = await client.get(template.format(**ids) + QUERIES.get(template, ""), headers=headers)
            assert response.status_code == 200, (template, response.text)
            assert units_of_work == ["read"], template
