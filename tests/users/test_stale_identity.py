"""README, "Deleting an account": after `DELETE /api/users/me`, the same identity is a new user on
every worker, including one whose identity cache still holds the deleted account's id (a per-process
cache, up to 60 s). Two apps on one database stand for two workers: the first deletes the account and
builds the new one; the second had cached the old id and must answer every request as the new
account would, at once: no empty lists, no 404 for the new account's rows, no refused cursor or
sync token, no write that quietly does nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import AppClientFactory

type Json = dict[str, Any]
REMINDED = {"due_at": "2030-01-08T12:00:00Z", "reminders": [{"before_due": "PT1H"}]}
WINDOW = {"from": "2030-01-07T00:00:00Z", "to": "2030-01-09T00:00:00Z"}


@dataclass
class NewAccount:
    """What the first worker built for the identity after the deletion."""

    headers: dict[str, str]
    todo: Json
    second_todo: Json
    listed: Json
    trashed: Json
    sync_token: str
    cursor: str
    old_sync_token: str = ""  # the deleted account's, from before the deletion


async def _ok(response: httpx.Response, status: int = 200) -> Json:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def _titles(client: httpx.AsyncClient, new: NewAccount) -> list[str]:
    body = await _ok(await client.get("/api/todos", headers=new.headers))
    return sorted(todo["title"] for todo in body["items"])


async def _build(first: httpx.AsyncClient, headers: dict[str, str]) -> NewAccount:
    listed = await _ok(await first.post("/api/lists", json={"name": "Home"}, headers=headers), 201)
    todo = await _ok(
        await first.post(
            "/api/todos",
            json={
                "title": "new",
                "list_id": listed["id"],
                "due_at": "2030-01-08T12:00:00Z",
                "reminders": [{"before_due": "PT1H"}],
            },
            headers=headers,
        ),
        201,
    )
    second_todo = await _ok(await first.post("/api/todos", json={"title": "second"}, headers=headers), 201)
    trashed = await _ok(await first.post("/api/todos", json={"title": "trashed"}, headers=headers), 201)
    await _ok(await first.delete(f"/api/todos/{trashed['id']}", headers=headers), 204)
    token = (await _ok(await first.get("/api/sync", headers=headers)))["sync_token"]
    cursor = (await _ok(await first.get("/api/todos", params={"limit": 1}, headers=headers)))["next_cursor"]
    assert cursor is not None
    return NewAccount(headers, todo, second_todo, listed, trashed, token, cursor)


type Check = Callable[[httpx.AsyncClient, httpx.AsyncClient, NewAccount], Awaitable[None]]


async def _list_todos(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    assert await _titles(second, new) == ["new", "second"]


async def _filtered(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get("/api/todos", params={"list_id": new.listed["id"]}, headers=new.headers))
    assert [todo["id"] for todo in body["items"]] == [new.todo["id"]]


async def _next_page(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get("/api/todos", params={"limit": 1, "cursor": new.cursor}, headers=new.headers))
    assert len(body["items"]) == 1


async def _get_todo(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    assert (await _ok(await second.get(f"/api/todos/{new.todo['id']}", headers=new.headers)))["title"] == "new"


async def _patch_todo(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.patch(f"/api/todos/{new.todo['id']}", json={"title": "edited"}, headers=new.headers))
    assert await _titles(first, new) == ["edited", "second"]


async def _complete_todo(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.patch(f"/api/todos/{new.todo['id']}", json={"completed": True}, headers=new.headers))
    completions = await _ok(await first.get(f"/api/todos/{new.todo['id']}/completions", headers=new.headers))
    assert len(completions["items"]) == 1


async def _move_todo_to_no_list(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.patch(f"/api/todos/{new.todo['id']}", json={"list_id": None}, headers=new.headers))
    assert (await _ok(await first.get(f"/api/todos/{new.todo['id']}", headers=new.headers)))["list_id"] is None


async def _put_todo(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.put(f"/api/todos/{new.todo['id']}", json={"title": "replaced"}, headers=new.headers))
    assert await _titles(first, new) == ["replaced", "second"]


async def _delete_todo(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.delete(f"/api/todos/{new.todo['id']}", headers=new.headers), 204)
    assert await _titles(first, new) == ["second"]


async def _move_todo(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = {"after_id": new.todo["id"], "list_id": new.listed["id"]}
    await _ok(await second.post(f"/api/todos/{new.second_todo['id']}/move", json=body, headers=new.headers))
    moved = await _ok(await first.get(f"/api/todos/{new.second_todo['id']}", headers=new.headers))
    assert moved["list_id"] == new.listed["id"]


async def _completions(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get(f"/api/todos/{new.todo['id']}/completions", headers=new.headers))
    assert body["items"] == []


async def _list_lists(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get("/api/lists", headers=new.headers))
    assert [item["name"] for item in body["items"]] == ["Home"]


async def _get_list(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    assert (await _ok(await second.get(f"/api/lists/{new.listed['id']}", headers=new.headers)))["name"] == "Home"


async def _patch_list(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.patch(f"/api/lists/{new.listed['id']}", json={"name": "Work"}, headers=new.headers))
    assert (await _ok(await first.get(f"/api/lists/{new.listed['id']}", headers=new.headers)))["name"] == "Work"


async def _delete_list(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.delete(f"/api/lists/{new.listed['id']}", headers=new.headers), 204)
    assert (await first.get(f"/api/lists/{new.listed['id']}", headers=new.headers)).status_code == 404


async def _move_list(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.post(f"/api/lists/{new.listed['id']}/move", json={"after_id": None}, headers=new.headers))


async def _trash(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get("/api/trash", headers=new.headers))
    assert [item["id"] for item in body["items"]] == [new.trashed["id"]]


async def _restore(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.post(f"/api/trash/{new.trashed['id']}/restore", headers=new.headers))
    assert await _titles(first, new) == ["new", "second", "trashed"]


async def _purge(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.delete(f"/api/trash/{new.trashed['id']}", headers=new.headers), 204)
    assert (await _ok(await first.get("/api/trash", headers=new.headers)))["items"] == []


async def _empty_trash(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.delete("/api/trash", headers=new.headers), 204)
    assert (await _ok(await first.get("/api/trash", headers=new.headers)))["items"] == []


async def _full_sync(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get("/api/sync", headers=new.headers))
    assert sorted(todo["title"] for todo in body["todos"]) == ["new", "second"]


async def _incremental_sync(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await first.patch(f"/api/todos/{new.todo['id']}", json={"title": "changed"}, headers=new.headers))
    body = await _ok(await second.get("/api/sync", params={"sync_token": new.sync_token}, headers=new.headers))
    assert [todo["title"] for todo in body["todos"]] == ["changed"]


async def _old_sync_token(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    """The deleted account's changes are not "nothing changed": its token is refused, as on a worker
    that never saw the old account, and the client starts again with a full sync."""
    refused = await second.get("/api/sync", params={"sync_token": new.old_sync_token}, headers=new.headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_sync_token"), refused.text


async def _batch(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    command = {"type": "todo_update", "uuid": str(uuid.uuid4()), "args": {"id": new.todo["id"], "title": "batched"}}
    body = await _ok(await second.post("/api/batch", json={"commands": [command]}, headers=new.headers))
    assert [result["status"] for result in body["results"]] == [200]
    assert await _titles(first, new) == ["batched", "second"]


async def _reminders(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    body = await _ok(await second.get("/api/reminders", params=WINDOW, headers=new.headers))
    assert [item["todo_id"] for item in body["items"]] == [new.todo["id"]]


async def _me(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    mine = await _ok(await first.get("/api/users/me", headers=new.headers))
    assert (await _ok(await second.get("/api/users/me", headers=new.headers)))["id"] == mine["id"]


async def _create(first: httpx.AsyncClient, second: httpx.AsyncClient, new: NewAccount) -> None:
    await _ok(await second.post("/api/todos", json={"title": "third"}, headers=new.headers), 201)
    assert await _titles(first, new) == ["new", "second", "third"]


CHECKS: dict[str, Check] = {
    "list todos": _list_todos,
    "filter todos": _filtered,
    "next page": _next_page,
    "get todo": _get_todo,
    "patch todo": _patch_todo,
    "complete todo": _complete_todo,
    "todo out of its list": _move_todo_to_no_list,
    "put todo": _put_todo,
    "delete todo": _delete_todo,
    "move todo": _move_todo,
    "completions": _completions,
    "list lists": _list_lists,
    "get list": _get_list,
    "patch list": _patch_list,
    "delete list": _delete_list,
    "move list": _move_list,
    "trash": _trash,
    "restore": _restore,
    "purge": _purge,
    "empty trash": _empty_trash,
    "full sync": _full_sync,
    "incremental sync": _incremental_sync,
    "the deleted account's sync token": _old_sync_token,
    "batch": _batch,
    "reminders": _reminders,
    "me": _me,
    "create": _create,
}


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
async def test_a_worker_that_cached_the_deleted_account_answers_as_the_new_one(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], check: Check
) -> None:
    headers = auth(f"stale-{uuid.uuid4()}")
    async with app_client() as first, app_client() as second:
        await _ok(await first.post("/api/todos", json={"title": "old"}, headers=headers), 201)
        old = await _ok(await second.get("/api/todos", headers=headers))  # the second worker caches the old id
        assert [todo["title"] for todo in old["items"]] == ["old"]
        old_sync_token = (await _ok(await second.get("/api/sync", headers=headers)))["sync_token"]
        await _ok(await first.delete("/api/users/me", headers=headers), 204)
        new = await _build(first, headers)
        new.old_sync_token = old_sync_token

        await check(first, second, new)
        # ... and from then on too: the second worker serves the new account.
        assert await _titles(second, new) == await _titles(first, new)
