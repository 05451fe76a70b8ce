"""The trash: DELETE moves todos and lists there; they are invisible everywhere else, do not count
toward quotas, come back with restore (a list with its todos) and go for good when purged, emptied
or expired by housekeeping."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tests.api import Api
from tests.conftest import AppClientFactory
from tests.housekeeping import prompt_housekeeping
from todo_api import maintenance
from todo_api.config import load_settings
from todo_api.models import SyncTombstone, Todo, TodoList, User
from todo_api.ratelimit import build_rate_limiter
from todo_api.storage.database import create_engine, database


async def _trash(api: Api) -> list[dict[str, Any]]:
    return await api.all_pages("/api/trash", limit=2)


async def _me(api: Api) -> uuid.UUID:
    return uuid.UUID((await api.request("GET", "/api/users/me")).json()["id"])


async def _tombstones(engine: AsyncEngine, user_id: uuid.UUID) -> dict[str, str]:
    """id → kind of the user's tombstones."""
    statement = select(col(SyncTombstone.id), col(SyncTombstone.kind)).where(col(SyncTombstone.user_id) == user_id)
    async with engine.connect() as connection:
        return {str(row[0]): row[1] for row in (await connection.execute(statement)).all()}


async def _user_counts(engine: AsyncEngine, api: Api) -> tuple[int, int]:
    user_id = await _me(api)
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(col(User.todo_count), col(User.list_count)).where(col(User.id) == user_id))
        ).one()
    return int(row[0]), int(row[1])


async def test_a_deleted_todo_is_404_everywhere_and_listed_in_the_trash(api: Api, db_engine: AsyncEngine) -> None:
    todo = await api.create_todo(title="gone", tags=["x"])
    kept = await api.create_todo(title="kept")
    assert (await api.request("DELETE", f"/api/todos/{todo['id']}")).status_code == 204
    url = f"/api/todos/{todo['id']}"
    for method, body in (("GET", None), ("PUT", {"title": "t"}), ("PATCH", {"title": "t"}), ("DELETE", None)):
        assert (await api.request(method, url, json=body)).status_code == 404, method
    assert [item["id"] for item in await api.all_pages("/api/todos")] == [kept["id"]]
    assert [item["id"] for item in await api.all_pages("/api/todos", tag="x", q="gone")] == []
    trash = await _trash(api)
    assert [(item["kind"], item["id"]) for item in trash] == [("todo", todo["id"])]
    assert trash[0]["resource"] == todo
    assert datetime.fromisoformat(trash[0]["deleted_at"]) >= datetime.fromisoformat(todo["updated_at"])
    assert await _user_counts(db_engine, api) == (1, 0)


async def test_restoring_a_todo_brings_it_back_whole(api: Api) -> None:
    todo = await api.create_todo(title="back", priority="high", due_at="2030-01-01T00:00:00Z")
    await api.request("DELETE", f"/api/todos/{todo['id']}")
    restored = await api.request("POST", f"/api/trash/{todo['id']}/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert {k: v for k, v in body.items() if k != "updated_at"} == {k: v for k, v in todo.items() if k != "updated_at"}
    assert restored.headers["etag"] == (await api.request("GET", f"/api/todos/{todo['id']}")).headers["etag"]
    assert await _trash(api) == []
    assert (await api.request("POST", f"/api/trash/{todo['id']}/restore")).status_code == 404


async def test_a_list_takes_its_todos_to_the_trash_and_back(api: Api, db_engine: AsyncEngine) -> None:
    work = await api.create_list("Work")
    inside = [await api.create_todo(title=f"t{n}", list_id=work["id"], completed=n == 0) for n in range(3)]
    alone = await api.create_todo(title="alone", list_id=work["id"])
    await api.request("DELETE", f"/api/todos/{alone['id']}")  # trashed on its own first
    assert (await api.request("DELETE", f"/api/lists/{work['id']}")).status_code == 204
    assert (await api.request("GET", f"/api/lists/{work['id']}")).status_code == 404
    assert await api.all_pages("/api/lists") == []
    assert await api.all_pages("/api/todos") == []
    assert await _user_counts(db_engine, api) == (0, 0)
    trash = await _trash(api)
    assert [(item["kind"], item["id"]) for item in trash] == [("list", work["id"]), ("todo", alone["id"])]
    assert (trash[0]["resource"]["todo_count"], trash[0]["resource"]["open_count"]) == (3, 2)
    # A todo whose list is in the trash cannot come back alone.
    refused = await api.request("POST", f"/api/trash/{alone['id']}/restore")
    assert (refused.status_code, refused.json()["code"]) == (409, "list_in_trash")
    assert "restore the list" in refused.json()["detail"]
    restored = await api.request("POST", f"/api/trash/{work['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert (restored.json()["todo_count"], restored.json()["open_count"]) == (3, 2)
    assert {item["id"] for item in await api.all_pages("/api/todos")} == {todo["id"] for todo in inside}
    assert [(item["kind"], item["id"]) for item in await _trash(api)] == [("todo", alone["id"])]
    assert (await api.request("POST", f"/api/trash/{alone['id']}/restore")).status_code == 200
    assert await _user_counts(db_engine, api) == (4, 1)


async def test_a_trashed_list_takes_no_todos_and_frees_its_name(api: Api) -> None:
    old = await api.create_list("Home")
    await api.request("DELETE", f"/api/lists/{old['id']}")
    refused = await api.request("POST", "/api/todos", json={"title": "t", "list_id": old["id"]})
    assert (refused.status_code, refused.json()["detail"][0]["loc"]) == (422, ["body", "list_id"])
    todo = await api.create_todo(title="t")
    moved = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"list_id": old["id"]})
    assert moved.status_code == 422
    new = await api.create_list("home")  # the name is free again
    clash = await api.request("POST", f"/api/trash/{old['id']}/restore")
    assert (clash.status_code, clash.json()["code"]) == (409, "duplicate_name")
    await api.request("PATCH", f"/api/lists/{new['id']}", json={"name": "Home 2"})
    assert (await api.request("POST", f"/api/trash/{old['id']}/restore")).status_code == 200


async def test_restoring_past_a_quota_is_409(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(max_todos_per_user=2, max_lists_per_user=1) as client:
        api = Api(client, auth())
        first = await api.create_todo(title="one")
        await api.request("DELETE", f"/api/todos/{first['id']}")
        await api.create_todo(title="two")
        await api.create_todo(title="three")  # the trashed one does not count
        refused = await api.request("POST", f"/api/trash/{first['id']}/restore")
        assert (refused.status_code, refused.json()["code"]) == (409, "quota_exceeded")
        work = await api.create_list("Work")
        await api.request("DELETE", f"/api/lists/{work['id']}")
        await api.create_list("Home")
        refused = await api.request("POST", f"/api/trash/{work['id']}/restore")
        assert (refused.status_code, refused.json()["code"]) == (409, "quota_exceeded")


async def test_restoring_a_list_counts_its_todos_against_the_quota(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client(max_todos_per_user=3) as client:
        api = Api(client, auth())
        work = await api.create_list("Work")
        for n in range(2):
            await api.create_todo(title=f"t{n}", list_id=work["id"])
        await api.request("DELETE", f"/api/lists/{work['id']}")
        await api.create_todo(title="a")
        await api.create_todo(title="b")
        refused = await api.request("POST", f"/api/trash/{work['id']}/restore")
        assert (refused.status_code, refused.json()["code"]) == (409, "quota_exceeded")
        assert await api.all_pages("/api/lists") == []  # nothing was restored


async def test_purge_one_and_empty_the_trash(api: Api, db_engine: AsyncEngine) -> None:
    work = await api.create_list("Work")
    inside = await api.create_todo(title="in", list_id=work["id"])
    loose = [await api.create_todo(title=f"l{n}") for n in range(3)]
    live = await api.create_todo(title="live")
    for todo in loose:
        await api.request("DELETE", f"/api/todos/{todo['id']}")
    await api.request("DELETE", f"/api/lists/{work['id']}")
    assert (await api.request("DELETE", f"/api/trash/{loose[0]['id']}")).status_code == 204
    assert (await api.request("DELETE", f"/api/trash/{loose[0]['id']}")).status_code == 404
    assert (await api.request("DELETE", f"/api/trash/{live['id']}")).status_code == 404  # not in the trash
    assert (await api.request("DELETE", f"/api/trash/{uuid.uuid4()}")).status_code == 404
    assert len(await _trash(api)) == 3
    assert (await api.request("DELETE", "/api/trash")).status_code == 204
    assert await _trash(api) == []
    assert (await api.request("POST", f"/api/trash/{inside['id']}/restore")).status_code == 404
    assert [item["id"] for item in await api.all_pages("/api/todos")] == [live["id"]]
    stones = await _tombstones(db_engine, await _me(api))
    assert set(stones) == {inside["id"], work["id"], *(todo["id"] for todo in loose)}
    assert (stones[work["id"]], stones[inside["id"]]) == ("list", "todo")
    assert await _user_counts(db_engine, api) == (1, 0)


async def test_trash_pages_are_newest_first_and_keyset_paged(api: Api) -> None:
    ids = []
    for n in range(5):
        if n % 2:
            created = await api.create_list(f"L{n}")
            await api.request("DELETE", f"/api/lists/{created['id']}")
        else:
            created = await api.create_todo(title=f"T{n}")
            await api.request("DELETE", f"/api/todos/{created['id']}")
        ids.append(created["id"])
    for limit in (1, 2, 3, 50):
        items = await api.all_pages("/api/trash", limit=limit)
        assert [item["id"] for item in items] == ids[::-1]
    first = (await api.request("GET", "/api/trash", params={"limit": 2})).json()
    other = await api.request("GET", "/api/todos", params={"cursor": first["next_cursor"]})
    assert other.status_code == 422  # a trash cursor is not a todo cursor
    bad = await api.request("GET", "/api/trash", params={"cursor": "x" * 30})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")


@pytest.mark.parametrize("path", ["/api/trash/not-a-uuid/restore", "/api/trash/not-a-uuid"])
async def test_bad_ids_are_422(api: Api, path: str) -> None:
    method = "POST" if path.endswith("restore") else "DELETE"
    assert (await api.request(method, path)).status_code == 422


async def test_housekeeping_purges_what_is_older_than_the_retention(
    api: Api, base_settings: dict[str, Any], db_engine: AsyncEngine
) -> None:
    old, recent = await api.create_todo(title="old"), await api.create_todo(title="recent")
    work = await api.create_list("Old list")
    inside = await api.create_todo(title="in", list_id=work["id"])
    for resource in (f"todos/{old['id']}", f"todos/{recent['id']}", f"lists/{work['id']}"):
        await api.request("DELETE", f"/api/{resource}")
    async with db_engine.begin() as connection:
        for model, ids in ((Todo, [old["id"], inside["id"]]), (TodoList, [work["id"]])):
            stale = func.now() - timedelta(days=31)
            targets = [uuid.UUID(resource_id) for resource_id in ids]
            await connection.execute(update(model).where(col(model.id).in_(targets)).values(deleted_at=stale))
    settings = load_settings(**base_settings)
    engine = create_engine(settings)
    try:
        db = database(settings, engine)
        await maintenance.purge_once(db, build_rate_limiter(settings, db), timedelta(hours=24), timedelta(days=30))
    finally:
        await engine.dispose()
    assert [item["id"] for item in await _trash(api)] == [recent["id"]]
    assert set(await _tombstones(db_engine, await _me(api))) == {old["id"], inside["id"], work["id"]}


async def test_deleting_the_account_removes_the_trash_and_tombstones(api: Api, db_engine: AsyncEngine) -> None:
    user_id = await _me(api)
    work = await api.create_list("Work")
    todo = await api.create_todo(title="t", list_id=work["id"])
    await api.request("DELETE", f"/api/todos/{todo['id']}")
    other = await api.create_todo(title="u")
    await api.request("DELETE", f"/api/todos/{other['id']}")
    await api.request("DELETE", f"/api/trash/{other['id']}")
    assert set(await _tombstones(db_engine, user_id)) == {other["id"]}
    assert (await api.request("DELETE", "/api/users/me")).status_code == 204
    async with db_engine.connect() as connection:
        for model in (Todo, TodoList, SyncTombstone):
            owned = select(func.count()).select_from(model).where(col(model.user_id) == user_id)
            assert (await connection.execute(owned)).scalar_one() == 0


def _aged(days: int, hours: int) -> timedelta:
    return timedelta(days=days) + timedelta(hours=hours)


@pytest.mark.parametrize("days", [1, 45])
async def test_the_apps_housekeeping_purges_the_trash_after_trash_retention_days(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    days: int,
) -> None:
    """README, "The trash" and `TRASH_RETENTION_DAYS` ("days a deleted todo or list stays in the
    trash (restorable) before housekeeping purges it"): through the app's own housekeeping, with the
    setting below and above the default 30, an item trashed an hour less than that many days ago
    stays restorable and one trashed an hour more is deleted for good (a tombstone for sync)."""
    rounds = prompt_housekeeping(monkeypatch)
    async with app_client(trash_retention_days=days) as client:
        api = Api(client, auth())
        kept, purged = await api.create_todo(title="kept"), await api.create_todo(title="purged")
        kept_list, purged_list = await api.create_list("Kept list"), await api.create_list("Purged list")
        for resource in (f"todos/{kept['id']}", f"todos/{purged['id']}"):
            assert (await api.request("DELETE", f"/api/{resource}")).status_code == 204
        for resource in (f"lists/{kept_list['id']}", f"lists/{purged_list['id']}"):
            assert (await api.request("DELETE", f"/api/{resource}")).status_code == 204
        async with db_engine.begin() as connection:
            for model, kept_id, purged_id in (
                (Todo, kept["id"], purged["id"]),
                (TodoList, kept_list["id"], purged_list["id"]),
            ):
                for resource_id, age in ((kept_id, _aged(days, -1)), (purged_id, _aged(days, +1))):
                    await connection.execute(
                        update(model).where(col(model.id) == uuid.UUID(resource_id)).values(deleted_at=func.now() - age)
                    )
        mark = rounds.started
        assert (await api.request("GET", "/api/users/me")).status_code == 200  # a round runs after requests
        await rounds.after(mark)
        assert {item["id"] for item in await _trash(api)} == {kept["id"], kept_list["id"]}
        assert set(await _tombstones(db_engine, await _me(api))) == {purged["id"], purged_list["id"]}
        for gone in (purged, purged_list):
            assert (await api.request("POST", f"/api/trash/{gone['id']}/restore")).status_code == 404
        assert (await api.request("POST", f"/api/trash/{kept['id']}/restore")).status_code == 200
        assert (await api.request("POST", f"/api/trash/{kept_list['id']}/restore")).status_code == 200


@pytest.mark.parametrize("days", [1, 45])
async def test_the_apps_housekeeping_keeps_purged_deletions_for_sync_trash_retention_days(
    app_client: AppClientFactory,
    auth: Callable[..., dict[str, str]],
    db_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    days: int,
) -> None:
    """README, `TRASH_RETENTION_DAYS` ("a sync token stays usable at least this long after a purge
    (older: 410, full-sync)") and "Sync" ("deletions of purged resources are remembered for
    `TRASH_RETENTION_DAYS`"): through the app's own housekeeping, with the setting below and above
    the default 30, a token from before a purge an hour less than that many days ago still syncs (and
    reports the deletion); one from before a purge an hour more ago is 410 `sync_token_expired`."""
    rounds = prompt_housekeeping(monkeypatch)
    async with app_client(trash_retention_days=days) as client:
        recent, old = Api(client, auth()), Api(client, auth())
        tokens: dict[str, str] = {}
        todos: dict[str, dict[str, Any]] = {}
        for name, api in (("recent", recent), ("old", old)):
            todos[name] = await api.create_todo(title=name)
            full = await api.request("GET", "/api/sync")
            assert full.status_code == 200, full.text
            tokens[name] = full.json()["sync_token"]
            assert (await api.request("DELETE", f"/api/todos/{todos[name]['id']}")).status_code == 204
            assert (await api.request("DELETE", f"/api/trash/{todos[name]['id']}")).status_code == 204
        async with db_engine.begin() as connection:
            for name, age in (("recent", _aged(days, -1)), ("old", _aged(days, +1))):
                await connection.execute(
                    update(SyncTombstone)
                    .where(col(SyncTombstone.id) == uuid.UUID(todos[name]["id"]))
                    .values(purged_at=SyncTombstone.purged_at - age)
                )
        mark = rounds.started
        assert (await recent.request("GET", "/api/users/me")).status_code == 200  # a round runs after requests
        await rounds.after(mark)
        still = await recent.request("GET", "/api/sync", params={"sync_token": tokens["recent"]})
        assert still.status_code == 200, still.text
        assert todos["recent"]["id"] in still.json()["deleted"]["todos"]
        expired = await old.request("GET", "/api/sync", params={"sync_token": tokens["old"]})
        assert (expired.status_code, expired.json()["code"]) == (410, "sync_token_expired")
        assert set(await _tombstones(db_engine, await _me(recent))) == {todos["recent"]["id"]}
        assert await _tombstones(db_engine, await _me(old)) == {}
