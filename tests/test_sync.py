"""Sync: a full sync, then only what changed after a token — created, updated, completed and
restored resources whole, trashed and purged ones as ids — in pages of `limit`; tokens sealed for
their user; 410 when deletions the token needs were forgotten.

A sync may re-send a row that did not change: its token starts at the oldest transaction that was
still running anywhere on the PostgreSQL server (transaction ids are server-wide, and other test
workers write meanwhile). So these tests never assert that something unchanged is absent; they
assert that every change is there and that whatever comes is the current state."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, col

from tests.api import Api
from tests.conftest import AppClientFactory
from tests.keys import CURSOR_SECRET
from todo_api.models import SyncHorizon, SyncTombstone
from todo_api.sealed import Sealer
from todo_api.sync import token as tokens
from todo_api.sync.repository import forget_tombstones

type Json = dict[str, Any]


async def sync(api: Api, token: str | None = None, limit: int | None = None) -> Json:
    params: dict[str, Any] = {}
    if token is not None:
        params["sync_token"] = token
    if limit is not None:
        params["limit"] = limit
    response = await api.request("GET", "/api/sync", params=params)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    assert set(body) == {"todos", "lists", "deleted", "sync_token", "has_more"}
    return body


async def sync_all(api: Api, token: str | None = None, limit: int | None = None) -> tuple[Json, str]:
    """Every page until `has_more` is false: the changes merged (last write wins) and the token."""
    merged: Json = {"todos": {}, "lists": {}, "deleted": {"todos": set(), "lists": set()}}
    while True:
        page = await sync(api, token, limit)
        for kind in ("todos", "lists"):
            for item in page[kind]:
                merged[kind][item["id"]] = item
                merged["deleted"][kind].discard(item["id"])
            for gone in page["deleted"][kind]:
                merged[kind].pop(gone, None)
                merged["deleted"][kind].add(gone)
        token = page["sync_token"]
        if not page["has_more"]:
            return merged, token


async def current(api: Api) -> tuple[dict[str, Json], dict[str, Json]]:
    """The server's state as the REST listings show it."""
    todos = {todo["id"]: todo for todo in await api.all_pages("/api/todos", limit=200)}
    lists = {item["id"]: item for item in await api.all_pages("/api/lists", limit=200)}
    return todos, lists


async def assert_current(api: Api, changes: Json) -> None:
    """Re-sent or not, what a sync returned whole is the current state, and what it deleted is gone."""
    todos, lists = await current(api)
    for kind, state in (("todos", todos), ("lists", lists)):
        for resource_id, item in changes[kind].items():
            assert state[resource_id] == item
        assert not changes["deleted"][kind] & set(state)


async def test_a_full_sync_returns_every_live_resource(api: Api) -> None:
    work = await api.create_list("Work")
    todos = [await api.create_todo(title=f"t{n}", list_id=work["id"] if n % 2 else None) for n in range(5)]
    trashed = await api.create_todo(title="trashed")
    await api.request("DELETE", f"/api/todos/{trashed['id']}")
    body = await sync(api)
    assert body["has_more"] is False
    assert body["deleted"] == {"todos": [], "lists": []}
    assert sorted(body["todos"], key=lambda t: t["title"]) == todos
    work["todo_count"], work["open_count"] = 2, 2
    assert body["lists"] == [work]
    assert body["todos"][0] == (await api.request("GET", f"/api/todos/{body['todos'][0]['id']}")).json()


async def test_an_incremental_sync_returns_only_changes_deletions_as_ids(api: Api) -> None:
    work = await api.create_list("Work")
    untouched = await api.create_todo(title="untouched")
    updated = await api.create_todo(title="updated")
    completed = await api.create_todo(title="completed", list_id=work["id"])
    deleted = await api.create_todo(title="deleted")
    restored = await api.create_todo(title="restored")
    await api.request("DELETE", f"/api/todos/{restored['id']}")
    _, token = await sync_all(api)
    await api.request("PATCH", f"/api/todos/{updated['id']}", json={"title": "new title"})
    await api.request("PATCH", f"/api/todos/{completed['id']}", json={"completed": True})
    await api.request("DELETE", f"/api/todos/{deleted['id']}")
    await api.request("POST", f"/api/trash/{restored['id']}/restore")
    created = await api.create_todo(title="created")
    changes, token = await sync_all(api, token)
    assert set(changes["todos"]) >= {updated["id"], completed["id"], restored["id"], created["id"]}
    assert set(changes["todos"]) <= {updated["id"], completed["id"], restored["id"], created["id"], untouched["id"]}
    await assert_current(api, changes)
    assert changes["todos"][updated["id"]]["title"] == "new title"
    assert changes["todos"][completed["id"]]["completed"] is True  # a completion is not a deletion
    assert changes["deleted"] == {"todos": {deleted["id"]}, "lists": set()}
    # The list's counts changed with its todo's completion: it comes again.
    assert changes["lists"][work["id"]]["open_count"] == 0
    quiet, _ = await sync_all(api, token)
    await assert_current(api, quiet)
    assert quiet["deleted"]["todos"] <= {deleted["id"]}


async def test_a_trashed_list_reports_its_todos_and_a_purge_still_reports_them(api: Api) -> None:
    work = await api.create_list("Work")
    inside = await api.create_todo(title="in", list_id=work["id"])
    loose = await api.create_todo(title="loose")
    _, before = await sync_all(api)
    await api.request("DELETE", f"/api/lists/{work['id']}")
    changes, after_trash = await sync_all(api, before)
    assert changes["deleted"] == {"todos": {inside["id"]}, "lists": {work["id"]}}
    assert set(changes["todos"]) <= {loose["id"]}
    await api.request("DELETE", f"/api/todos/{loose['id']}")
    await api.request("DELETE", "/api/trash")
    # From before the trash and from after it: the purge is reported either way (tombstones).
    for token in (before, after_trash):
        changes, _ = await sync_all(api, token)
        assert changes["deleted"] == {"todos": {inside["id"], loose["id"]}, "lists": {work["id"]}}
        assert changes["todos"] == changes["lists"] == {}  # nothing is left to re-send


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
async def test_pages_follow_has_more_and_lose_nothing(api: Api, limit: int) -> None:
    lists = [await api.create_list(f"L{n}") for n in range(3)]
    todos = [await api.create_todo(title=f"t{n}", list_id=lists[n % 3]["id"]) for n in range(8)]
    first = await sync(api, limit=limit)
    assert first["has_more"] is True
    assert len(first["todos"]) + len(first["lists"]) == limit
    everything, token = await sync_all(api, limit=limit)
    assert set(everything["todos"]) == {todo["id"] for todo in todos}
    assert set(everything["lists"]) == {item["id"] for item in lists}
    for todo in todos[:5]:
        await api.request("DELETE", f"/api/todos/{todo['id']}")
    await api.request("DELETE", f"/api/trash/{todos[0]['id']}")
    changes, _ = await sync_all(api, token, limit=limit)
    assert changes["deleted"]["todos"] == {todo["id"] for todo in todos[:5]}
    await assert_current(api, changes)
    replica = {
        todo_id: todo for todo_id, todo in everything["todos"].items() if todo_id not in changes["deleted"]["todos"]
    }
    assert replica.keys() == (await current(api))[0].keys()


async def test_tokens_are_bound_to_their_user_and_cannot_be_edited(api: Api, other_api: Api) -> None:
    await api.create_todo(title="mine")
    token = (await sync(api))["sync_token"]
    cursor = (await api.request("GET", "/api/todos", params={"limit": 1})).json()["next_cursor"]
    await api.create_todo(title="second")
    cursor = (await api.request("GET", "/api/todos", params={"limit": 1})).json()["next_cursor"]
    edited = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")
    for bad in (edited, "not-a-token", cursor, "A" * 200):
        response = await api.request("GET", "/api/sync", params={"sync_token": bad})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_sync_token"), bad
        assert response.json()["detail"][0]["loc"] == ["query", "sync_token"]
    theirs = await other_api.request("GET", "/api/sync", params={"sync_token": token})
    mine_garbled = await other_api.request("GET", "/api/sync", params={"sync_token": edited})
    assert theirs.status_code == 422
    # Another user's token is refused exactly like a forged one (only the echoed input differs).
    assert theirs.json()["detail"][0]["msg"] == mine_garbled.json()["detail"][0]["msg"]


async def test_rotation_keeps_sync_tokens_while_the_previous_secret_is_set(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """README (Sync): a token sealed with a secret the server no longer has is 422
    `invalid_sync_token`; "when rotating `CURSOR_SECRET`, keep the old one as
    `CURSOR_SECRET_PREVIOUS`" — so while it is kept, old tokens still sync."""
    headers = auth()
    new_secret = "a-brand-new-cursor-secret-of-40-characters"
    async with app_client() as client:
        api = Api(client, headers)
        todo = await api.create_todo(title="v1")
        _, old = await sync_all(api)
        assert (await api.request("PATCH", f"/api/todos/{todo['id']}", json={"title": "v2"})).status_code == 200
    async with app_client(cursor_secret=new_secret, cursor_secret_previous=CURSOR_SECRET) as client:
        api = Api(client, headers)
        changes, new = await sync_all(api, old)  # 200, the change since the old token included
        assert {todo_id: item["title"] for todo_id, item in changes["todos"].items()} == {todo["id"]: "v2"}
    async with app_client(cursor_secret=new_secret) as client:  # rotation finished: old tokens are 422
        api = Api(client, headers)
        response = await api.request("GET", "/api/sync", params={"sync_token": old})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_sync_token"), response.text
        assert response.json()["detail"][0]["loc"] == ["query", "sync_token"]
        await sync_all(api, new)  # a token the rotation handed out still works


async def add_todos(api: Api, count: int) -> None:
    """`count` todos, up to 100 per batch request (fast seeding)."""
    for start in range(0, count, 100):
        commands = [
            {"type": "todo_add", "uuid": str(uuid.uuid4()), "args": {"title": f"t{n}"}}
            for n in range(start, min(start + 100, count))
        ]
        response = await api.request("POST", "/api/batch", json={"commands": commands})
        assert response.status_code == 200, response.text
        assert {result["status"] for result in response.json()["results"]} == {201}


async def test_the_default_limit_is_500(api: Api) -> None:
    """README (Sync): "`limit` (default 500, at most 1000) bounds the resources of one response"."""
    await add_todos(api, 501)
    first = await sync(api)
    assert (len(first["todos"]), first["lists"], first["has_more"]) == (500, [], True)
    rest = await sync(api, first["sync_token"])
    assert rest["has_more"] is False
    seen = {todo["id"] for todo in first["todos"]} | {todo["id"] for todo in rest["todos"]}
    assert len(seen) == 501


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"sync_token": "x" * 201}, {"x": 1}])
async def test_bad_sync_queries_are_422(api: Api, params: dict[str, Any]) -> None:
    assert (await api.request("GET", "/api/sync", params=params)).status_code == 422


async def _since(api: Api, token: str) -> int:
    """What a token's round starts from (tests know the secret and the user)."""
    user_id = uuid.UUID((await api.request("GET", "/api/users/me")).json()["id"])
    return tokens.unseal(Sealer([CURSOR_SECRET], purpose="cursor"), user_id, token).since


async def test_a_token_older_than_forgotten_tombstones_is_410(api: Api, db_engine: AsyncEngine) -> None:
    todo = await api.create_todo(title="t")
    _, old_token = await sync_all(api)
    await api.request("DELETE", f"/api/todos/{todo['id']}")
    await api.request("DELETE", f"/api/trash/{todo['id']}")
    async with db_engine.begin() as connection:
        await connection.execute(
            update(SyncTombstone)
            .where(col(SyncTombstone.id) == uuid.UUID(todo["id"]))
            .values(purged_at=SyncTombstone.purged_at - timedelta(days=40))
        )
        await connection.run_sync(lambda sync: forget_tombstones(Session(sync), timedelta(days=30)))
        horizon = (await connection.execute(select(col(SyncHorizon.purged_xid)))).scalars().all()
    gone = await api.request("GET", "/api/sync", params={"sync_token": old_token})
    assert (gone.status_code, gone.json()["code"]) == (410, "sync_token_expired")
    assert "full-sync" in gone.json()["detail"]
    # A token whose round starts after the forgotten tombstone is answered. (A sync's round starts
    # at the oldest transaction running anywhere on the server: other workers' transactions may hold
    # it back for a moment, so wait until a fresh token starts past the horizon.)
    async with asyncio.timeout(30):
        while True:
            fresh = (await sync(api))["sync_token"]
            if await _since(api, fresh) > max(horizon):
                break
            await asyncio.sleep(0.05)
    assert (await api.request("GET", "/api/sync", params={"sync_token": fresh})).status_code == 200
    assert await _since(api, old_token) <= max(horizon)
    assert (await api.request("GET", "/api/sync")).status_code == 200  # a full sync always works


async def test_sync_documents_carry_the_planner_fields_and_moves(api: Api) -> None:
    work, home = await api.create_list("Work"), await api.create_list("Home")
    parent = await api.create_todo(title="parent", list_id=work["id"], reminders=[{"at": "2030-01-01T08:00:00Z"}])
    child = await api.create_todo(
        title="child",
        parent_id=parent["id"],
        due_at="2030-01-01T09:00:00Z",
        recurrence="FREQ=DAILY",
        time_zone="Europe/Berlin",
        reminders=[{"before_due": "PT15M"}],
    )
    other = await api.create_todo(title="other", list_id=work["id"])
    full, token = await sync_all(api)
    planner = ("parent_id", "position", "recurrence", "time_zone", "reminders")
    for todo in (parent, child, other):
        assert {name: full["todos"][todo["id"]][name] for name in planner} == {name: todo[name] for name in planner}
    synced_child = full["todos"][child["id"]]
    assert (synced_child["parent_id"], synced_child["recurrence"]) == (parent["id"], "FREQ=DAILY")
    assert (synced_child["time_zone"], synced_child["reminders"]) == ("Europe/Berlin", [{"before_due": "PT15M"}])
    assert {item["id"]: item["position"] for item in full["lists"].values()} == {
        work["id"]: work["position"],
        home["id"]: home["position"],
    }
    await assert_current(api, full)
    moved = (await api.request("POST", f"/api/todos/{other['id']}/move", json={"after_id": None})).json()
    moved_list = (await api.request("POST", f"/api/lists/{home['id']}/move", json={"after_id": None})).json()
    assert moved["position"] < parent["position"]
    assert moved_list["position"] < work["position"]
    changes, _ = await sync_all(api, token)
    assert changes["todos"][other["id"]] == moved
    assert changes["todos"][other["id"]]["position"] != other["position"]
    assert changes["lists"][home["id"]] == moved_list
    await assert_current(api, changes)
