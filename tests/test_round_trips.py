"""Round trips to PostgreSQL per request (README "Performance"), counted by the benchmark's relay
on the wire: a read's statement goes out with the statement timeout and needs no COMMIT, so it
takes 1; a transaction's BEGIN and statement timeout travel with its first statement, so an edit
takes 2 (that flight, COMMIT) and a create 3 (the user's write turn with the group's last position,
the INSERT, COMMIT). An answer that finds nothing (an empty page, a 404) takes one more: the check
that the account behind the worker's cached id still exists (README "Deleting an account")."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from bench.remote import Relay, per_request

from tests.conftest import AppClientFactory

REQUESTS = 5
STATUSES = {200, 201, 404, 409, 412}


@pytest.fixture
def relay(database_url: str, tmp_path: Path) -> Iterator[Relay]:
    started = Relay.start(database_url, 0.0, tmp_path / "relay.log")
    try:
        yield started
    finally:
        started.stop()


async def test_a_read_takes_one_round_trip_an_edit_two_and_a_create_three(
    relay: Relay, database_url: str, app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("round-trips")
    async with app_client(database_url=relay.url_for(database_url)) as client:
        first = await client.post("/api/todos", json={"title": "warm"}, headers=headers)  # provisions the user
        assert first.status_code == 201, first.text
        assert (await client.post("/api/lists", json={"name": "warm"}, headers=headers)).status_code == 201
        path = f"/api/todos/{first.json()['id']}"
        requests: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "get": lambda: client.get(path, headers=headers),
            "list": lambda: client.get("/api/todos", headers=headers),
            "me": lambda: client.get("/api/users/me", headers=headers),
            "lists": lambda: client.get("/api/lists", headers=headers),
            "empty page": lambda: client.get("/api/todos", params={"completed": "true"}, headers=headers),
            "404": lambda: client.get(f"/api/todos/{uuid.uuid4()}", headers=headers),
            "patch": lambda: client.patch(path, json={"title": "edited"}, headers=headers),
            "complete": lambda: client.patch(path, json={"completed": True}, headers=headers),
            "create": lambda: client.post("/api/todos", json={"title": "more"}, headers=headers),
            # Refusals that found a row of the account: no check that the account exists (one more each)
            "412": lambda: client.patch(path, json={"title": "x"}, headers={**headers, "If-Match": '"0"'}),
            "409 name": lambda: client.post("/api/lists", json={"name": "warm"}, headers=headers),
        }
        trips: dict[str, float] = {}
        for name, send in requests.items():
            assert (await send()).status_code in STATUSES  # first of its kind: nothing else counted
            before = relay.counters()
            for _ in range(REQUESTS):
                response = await send()
                assert response.status_code in STATUSES, (name, response.text)
            trips[name] = per_request(before, relay.counters(), REQUESTS)["round_trips"]
    assert trips == {
        "get": 1,
        "list": 1,
        "me": 1,
        "lists": 1,
        "empty page": 2,
        "404": 2,
        "patch": 2,
        "complete": 2,
        "create": 3,
        "412": 3,  # the conditional UPDATE (with BEGIN), the read telling 412 from 404, ROLLBACK
        "409 name": 4,  # the user's write turn (with BEGIN), the last position, the INSERT, ROLLBACK
    }


async def test_a_read_by_a_user_this_worker_has_not_cached_takes_two(
    relay: Relay, database_url: str, app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """The account lookup and the read's statement, each its own implicit transaction: no BEGIN,
    no COMMIT (a transaction of its own would make it 3)."""
    users = [auth(f"round-trips-cold-{n}") for n in range(REQUESTS)]
    async with app_client(database_url=relay.url_for(database_url)) as client:
        for headers in users:  # provisioned by this worker
            assert (await client.post("/api/todos", json={"title": "warm"}, headers=headers)).status_code == 201
    async with app_client(database_url=relay.url_for(database_url)) as client:  # an empty identity cache
        assert (await client.get("/api/users/me", headers=auth("round-trips-cold-warm-up"))).status_code == 200
        before = relay.counters()
        for headers in users:
            response = await client.get("/api/todos", headers=headers)
            assert response.status_code == 200, response.text
            assert [todo["title"] for todo in response.json()["items"]] == ["warm"]
        assert per_request(before, relay.counters(), REQUESTS)["round_trips"] == 2


async def test_me_by_a_user_this_worker_has_not_cached_takes_one(
    relay: Relay, database_url: str, app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    """The identity look-up reads the whole account row, which is what `GET /api/users/me` answers:
    a client's first call after sign-in costs one round trip on a cold worker too."""
    users = [auth(f"round-trips-cold-me-{n}") for n in range(REQUESTS)]
    async with app_client(database_url=relay.url_for(database_url)) as client:
        for headers in users:  # provisioned by this worker
            assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    async with app_client(database_url=relay.url_for(database_url)) as client:  # an empty identity cache
        assert (await client.get("/api/users/me", headers=auth("round-trips-cold-me-warm-up"))).status_code == 200
        before = relay.counters()
        for n, headers in enumerate(users):
            response = await client.get("/api/users/me", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["subject"] == f"round-trips-cold-me-{n}"
        assert per_request(before, relay.counters(), REQUESTS)["round_trips"] == 1
