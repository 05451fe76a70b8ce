"""The FastAPI + SQLModel floor does the like-for-like floor's work: the same answers, headers,
access line and round trips (no BEGIN or COMMIT; the user read once per identity)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest
from starlette.types import ASGIApp

from bench import scenarios, stackfloor
from bench.fixture import Prepared
from bench.floor import Floor
from bench.inprocess import CURSOR_SECRET
from bench.remote import Relay, per_request
from bench.tests.test_floor import LIKE, Lines
from bench.tokens import AUDIENCE, ISSUER


@pytest.fixture
async def clients(
    ready: Prepared, relay: Relay, monkeypatch: pytest.MonkeyPatch, restored_logging: None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(the stack floor behind the counting relay, the like-for-like floor)"""
    for name, value in {
        "DATABASE_URL": relay.url_for(ready.database_url),
        "JWT_PUBLIC_KEY": ready.signer.public_pem,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "LOG_LEVEL": "info",
        "CURSOR_SECRET": CURSOR_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    floor = Floor()
    await floor._start()
    app = stackfloor.app
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://stack") as stack,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=cast(ASGIApp, floor)), base_url="http://floor", headers=LIKE
            ) as like,
        ):
            yield stack, like
    finally:
        assert floor.pool is not None
        await floor.pool.close()


async def test_it_answers_as_the_like_for_like_floor(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], ready: Prepared
) -> None:
    stack, like = clients
    auth = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    for path in ("/api/users/me", f"/api/todos/{ready.seed.user('user-1').todo_ids[3]}"):
        ours, theirs = await stack.get(path, headers=auth), await like.get(path, headers=auth)
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()) == (200, theirs.json())
        assert len(ours.headers["x-request-id"]) == 32
        for name in ("cache-control", "x-content-type-options", "content-type"):
            assert ours.headers[name] == theirs.headers[name], name


@pytest.mark.parametrize("path", [scenarios.LIST_PATH, scenarios.FILTER_PATH, scenarios.POSITION_PATH])
@pytest.mark.parametrize("limit", ["50", "3"])
async def test_its_pages_are_the_like_for_like_floors(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], ready: Prepared, path: str, limit: str
) -> None:
    """The first page of `list`, `filter` and `position`: the same items and cursor."""
    stack, like = clients
    auth = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    path = path.replace("limit=50", f"limit={limit}")
    ours, theirs = await stack.get(path, headers=auth), await like.get(path, headers=auth)
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()) == (200, theirs.json())
    items, next_cursor = ours.json()["items"], ours.json()["next_cursor"]
    assert items, "an empty page would make the comparison vacuous"
    assert (len(items), next_cursor is not None) == ((3, True) if limit == "3" else (len(items), False))


async def test_it_scopes_to_the_user_and_refuses_a_bad_token(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], ready: Prepared
) -> None:
    stack, _ = clients
    others = f"/api/todos/{ready.seed.user('user-2').todo_ids[0]}"
    mine = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    assert (await stack.get(others, headers=mine)).status_code == 404
    assert (await stack.get(others, headers={"Authorization": f"Bearer {ready.tokens['user-2']}"})).status_code == 200
    for header in ({}, {"Authorization": "Bearer x.y.z"}, {"Authorization": f"Basic {ready.tokens['user-1']}"}):
        assert (await stack.get("/api/users/me", headers=header)).status_code == 401


async def test_it_makes_the_like_for_like_floors_round_trips(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], ready: Prepared, relay: Relay
) -> None:
    stack, _ = clients
    auth = {"Authorization": f"Bearer {ready.tokens['user-2']}"}
    path = f"/api/todos/{ready.seed.user('user-2').todo_ids[0]}"
    warm = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    assert (await stack.get("/api/users/me", headers=warm)).status_code == 200  # connects, reads the server's settings
    trips = []
    for target in ("/api/users/me", path, path, scenarios.FILTER_PATH):
        before = relay.counters()
        assert (await stack.get(target, headers=auth)).status_code == 200
        trips.append(per_request(before, relay.counters(), 1)["round_trips"])
    # No BEGIN or COMMIT (an AUTOCOMMIT engine): `me` reads the user; the first `get` the user and
    # the todo (its dependency's identity cache is cold), then the todo alone; a page is one statement.
    assert trips == [1, 2, 1, 1]


async def test_it_logs_the_like_for_like_floors_access_line(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], ready: Prepared, restored_logging: None
) -> None:
    stack, like = clients
    found = Lines()
    logging.getLogger("floor.access").addHandler(found)
    auth = {"Authorization": f"Bearer {ready.tokens['user-1']}"}
    path = f"/api/todos/{ready.seed.user('user-1').todo_ids[5]}"
    for client in (stack, like):
        await client.get(path, headers=auth)
    ours, theirs = found.lines
    assert ours.keys() == theirs.keys()
    assert [ours[k] for k in ("route", "status", "user_id")] == [theirs[k] for k in ("route", "status", "user_id")]
