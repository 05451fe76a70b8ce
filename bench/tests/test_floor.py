"""The like-for-like floor: the plain floor's answers, todo-api's access line, todo-api's caches
(the user read once per identity, a cached token refused once it expires)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import orjson
import pytest
from starlette.types import ASGIApp

from bench.fixture import Prepared
from bench.floor import Floor
from bench.inprocess import CURSOR_SECRET, make_sync_paths, settings
from bench.remote import Relay, per_request
from bench.tokens import AUDIENCE, ISSUER
from todo_api.app import create_app
from todo_api.log import JsonFormatter

LIKE = {"X-Bench-Floor": "like"}


class Lines(logging.Handler):
    """Collects formatted lines of one logger (configure_logging replaces the root's handlers)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
async def floor(
    ready: Prepared, relay: Relay, monkeypatch: pytest.MonkeyPatch, restored_logging: None
) -> AsyncIterator[httpx.AsyncClient]:
    for name, value in {
        "DATABASE_URL": relay.url_for(ready.database_url),
        "JWT_PUBLIC_KEY": ready.signer.public_pem,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "JWT_LEEWAY_SECONDS": "0",
        "LOG_LEVEL": "info",
        "CURSOR_SECRET": CURSOR_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    app = Floor()
    await app._start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast(ASGIApp, app)), base_url="http://floor"
        ) as client:
            yield client
    finally:
        assert app.pool is not None
        await app.pool.close()


def _paths(ready: Prepared) -> list[str]:
    some_id = ready.seed.user("user-1").todo_ids[3]
    return ["/api/users/me", f"/api/todos/{some_id}", "/api/todos?limit=5"]


async def test_like_for_like_answers_as_the_plain_floor(floor: httpx.AsyncClient, ready: Prepared) -> None:
    auth = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    for path in _paths(ready):
        plain = await floor.get(path, headers=auth)
        like = await floor.get(path, headers=auth | LIKE)
        assert (like.status_code, like.json()) == (plain.status_code, plain.json()) == (200, plain.json())
        assert "x-request-id" in like.headers
        assert "x-request-id" not in plain.headers
        assert like.headers["cache-control"] == "no-store"


async def test_like_for_like_logs_todo_apis_access_line(
    floor: httpx.AsyncClient, ready: Prepared, restored_logging: None
) -> None:
    floor_lines = Lines()
    logging.getLogger("floor.access").addHandler(floor_lines)
    auth = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    for path in _paths(ready):
        await floor.get(path, headers=auth | LIKE)
        await floor.get(path, headers=auth)  # the plain floor writes no line
    app = create_app(settings(ready).model_copy(update={"log_level": "info"}))
    app_lines = Lines()
    logging.getLogger("todo_api.access").addHandler(app_lines)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client,
    ):
        for path in _paths(ready):
            assert (await client.get(path, headers=auth)).status_code == 200
    assert len(floor_lines.lines) == len(app_lines.lines) == len(_paths(ready))
    for ours, theirs in zip(floor_lines.lines, app_lines.lines, strict=True):
        assert ours.keys() - {"logger"} == theirs.keys() - {"logger"}
        fields = ("route", "status", "user_id")
        assert [ours[name] for name in fields] == [theirs[name] for name in fields]


async def test_like_for_like_reads_the_user_once_per_identity(
    floor: httpx.AsyncClient, ready: Prepared, relay: Relay
) -> None:
    auth = {"Authorization": f"Bearer {ready.tokens['user-2']}"}
    path = f"/api/todos/{ready.seed.user('user-2').todo_ids[0]}"
    trips = []
    for headers in (auth | LIKE, auth | LIKE, auth, auth):
        before = relay.counters()
        assert (await floor.get(path, headers=headers)).status_code == 200
        trips.append(per_request(before, relay.counters(), 1)["round_trips"])
    # Like todo-api's reads, the like-for-like floor's GET sends no BEGIN or COMMIT: the user and
    # the todo, then (the identity cached) the todo alone. The plain floor: BEGIN, user, todo, COMMIT.
    assert trips == [2, 1, 4, 4]


async def test_like_for_like_writes_send_begin_with_their_first_statement_and_commit(
    floor: httpx.AsyncClient, ready: Prepared, relay: Relay
) -> None:
    auth = {"Authorization": f"Bearer {ready.tokens['user-2']}"}
    path = f"/api/todos/{ready.seed.user('user-2').todo_ids[1]}"
    assert (await floor.get(path, headers=auth | LIKE)).status_code == 200  # caches the identity
    trips = []
    for completed, headers in ((True, auth | LIKE), (False, auth)):
        before = relay.counters()
        response = await floor.patch(path, json={"completed": completed}, headers=headers)
        assert response.status_code == 200, response.text
        trips.append(per_request(before, relay.counters(), 1)["round_trips"])
        assert (await floor.get(path, headers=auth)).json()["completed"] is completed  # committed
    # BEGIN + UPDATE in one flight, the completion history, COMMIT; the plain floor: BEGIN, user,
    # UPDATE, history, COMMIT.
    assert trips == [3, 5]


async def test_like_for_like_refuses_a_cached_token_once_it_expired(floor: httpx.AsyncClient, ready: Prepared) -> None:
    token = ready.signer.token(ready.seed.user("crowd-0001").subject, ttl_seconds=2)
    auth = {"Authorization": f"Bearer {token}"} | LIKE
    assert (await floor.get("/api/users/me", headers=auth)).status_code == 200
    await asyncio.sleep(3)  # past `exp` (the leeway is 0 here)
    assert (await floor.get("/api/users/me", headers=auth)).status_code == 401


async def test_the_floors_sync_answers_as_todo_apis(floor: httpx.AsyncClient, ready: Prepared) -> None:
    """Same token, same changes: the floor does the work todo-api's sync does (tokens differ: sealed
    with fresh nonces)."""
    path = (await make_sync_paths(ready, ["user-1"]))["user-1"]
    auth = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    app = create_app(settings(ready))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            expected = (await client.get(path, headers=auth)).json()
    found = await floor.get(path, headers=auth)
    assert found.status_code == 200, found.text
    body = found.json()
    assert len(expected["todos"]) >= 3
    for name in ("todos", "lists", "deleted", "has_more"):
        assert body[name] == expected[name], name
