"""Isolation of the trash, sync and batch: another user's ids (live or trashed), sync tokens, temp
ids and stored command results are answered exactly like ones that do not exist, byte for byte
(422s differ only in the echoed input), and nothing of theirs changes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from tests.api import Api

type Json = dict[str, Any]


async def _world(b: Api) -> dict[str, str]:
    """B's resources: a live todo and list, a trashed todo, a trashed list with a todo in it."""
    live_list = await b.create_list("Live")
    live = await b.create_todo(title="live", list_id=live_list["id"])
    trashed = await b.create_todo(title="trashed")
    await b.request("DELETE", f"/api/todos/{trashed['id']}")
    gone_list = await b.create_list("Gone")
    inside = await b.create_todo(title="inside", list_id=gone_list["id"])
    await b.request("DELETE", f"/api/lists/{gone_list['id']}")
    return {
        "live": live["id"],
        "live_list": live_list["id"],
        "trashed": trashed["id"],
        "gone_list": gone_list["id"],
        "inside": inside["id"],
    }


async def _snapshot(b: Api) -> Json:
    return {
        "todos": await b.all_pages("/api/todos"),
        "lists": await b.all_pages("/api/lists"),
        "trash": await b.all_pages("/api/trash"),
    }


def _same(theirs: httpx.Response, missing: httpx.Response) -> None:
    assert theirs.status_code == missing.status_code
    assert theirs.content == missing.content
    assert theirs.headers.get("content-type") == missing.headers.get("content-type")


async def test_another_users_ids_on_trash_routes_are_like_missing_ones(api: Api, other_api: Api) -> None:
    b_ids = await _world(other_api)
    before = await _snapshot(other_api)
    for resource_id in b_ids.values():
        for method, path in (("POST", "/api/trash/{}/restore"), ("DELETE", "/api/trash/{}")):
            theirs = await api.request(method, path.format(resource_id))
            missing = await api.request(method, path.format(uuid.uuid4()))
            assert theirs.status_code == 404
            _same(theirs, missing)
    assert (await api.request("DELETE", "/api/trash")).status_code == 204  # empties A's trash only
    assert (await api.request("GET", "/api/trash")).json() == {"items": [], "next_cursor": None}
    assert await _snapshot(other_api) == before


async def test_sync_shows_nothing_of_another_user(api: Api, other_api: Api) -> None:
    await _world(other_api)
    full = (await api.request("GET", "/api/sync")).json()
    assert (full["todos"], full["lists"]) == ([], [])
    b_token = (await other_api.request("GET", "/api/sync")).json()["sync_token"]
    await other_api.request("DELETE", "/api/trash")
    changes = (await api.request("GET", "/api/sync", params={"sync_token": full["sync_token"]})).json()
    assert (changes["todos"], changes["lists"], changes["deleted"]) == ([], [], {"todos": [], "lists": []})
    theirs = await api.request("GET", "/api/sync", params={"sync_token": b_token})
    forged = await api.request("GET", "/api/sync", params={"sync_token": b_token[:-4] + "AAAA"})
    assert theirs.status_code == forged.status_code == 422
    assert theirs.json()["code"] == forged.json()["code"] == "invalid_sync_token"
    assert theirs.json()["detail"][0]["msg"] == forged.json()["detail"][0]["msg"]


def _command(kind: str, args: Json, temp_id: str | None = None, key: str | None = None) -> Json:
    sent: Json = {"type": kind, "uuid": key or str(uuid.uuid4()), "args": args}
    return sent | ({"temp_id": temp_id} if temp_id else {})


async def test_batch_commands_on_another_users_ids_fail_like_missing_ones(api: Api, other_api: Api) -> None:
    b_ids = await _world(other_api)
    before = await _snapshot(other_api)
    for resource_id in b_ids.values():
        results = []
        for target in (resource_id, str(uuid.uuid4())):
            commands = [
                _command("todo_update", {"id": target, "title": "x"}),
                _command("todo_delete", {"id": target}),
                _command("todo_restore", {"id": target}),
                _command("list_update", {"id": target, "name": "x"}),
                _command("list_delete", {"id": target}),
                _command("list_restore", {"id": target}),
                _command("todo_add", {"title": "x", "list_id": target}),
            ]
            response = await api.request("POST", "/api/batch", json={"commands": commands})
            assert response.status_code == 200
            results.append([(r["status"], r["error"]) for r in response.json()["results"]])
        theirs, missing = results
        assert [status for status, _ in theirs] == [404, 404, 404, 404, 404, 404, 422]
        assert theirs[:6] == missing[:6]
        assert theirs[6][1]["detail"][0]["msg"] == missing[6][1]["detail"][0]["msg"]
    assert await _snapshot(other_api) == before
    assert await api.all_pages("/api/todos") == []


async def test_temp_ids_and_command_uuids_belong_to_one_batch_of_one_user(api: Api, other_api: Api) -> None:
    key = str(uuid.uuid4())
    first = await other_api.request(
        "POST", "/api/batch", json={"commands": [_command("list_add", {"name": "B"}, "tmp", key)]}
    )
    assert first.json()["results"][0]["status"] == 201
    # A's batch: B's temp id means nothing; B's command uuid is A's own, new command.
    commands = [_command("todo_add", {"title": "x", "list_id": "tmp"}), _command("list_add", {"name": "A"}, None, key)]
    response = await api.request("POST", "/api/batch", json={"commands": commands})
    results = response.json()["results"]
    assert results[0]["status"] == 422
    assert results[0]["error"]["detail"][0]["loc"] == ["body", "list_id"]
    assert (results[1]["status"], results[1]["resource"]["name"]) == (201, "A")
    # A later batch of B's does not see temp ids of an earlier one.
    later = await other_api.request("POST", "/api/batch", json={"commands": [_command("list_delete", {"id": "tmp"})]})
    assert later.json()["results"][0]["status"] == 422
    assert [item["name"] for item in await other_api.all_pages("/api/lists")] == ["B"]


async def test_moves_on_another_users_ids_fail_like_missing_ones(api: Api, other_api: Api) -> None:
    """todo_move and list_move with B's ids (live or trashed todos, lists, subtasks) as `id`,
    `after_id`, `parent_id` or `list_id`: A's results are those of random ids, byte for byte."""
    b_ids = await _world(other_api)
    b_parent = await other_api.create_todo(title="parent")
    b_ids["subtask"] = (await other_api.create_todo(title="sub", parent_id=b_parent["id"]))["id"]
    b_ids["parent"] = b_parent["id"]
    before = await _snapshot(other_api)
    mine, my_list = await api.create_todo(title="mine"), await api.create_list("Mine")
    for resource_id in b_ids.values():
        bodies = []
        for target in (resource_id, str(uuid.uuid4())):
            commands = [
                _command("todo_move", {"id": target}),  # 422s echo the id sent: masked below
                _command("todo_move", {"id": mine["id"], "after_id": target}),
                _command("todo_move", {"id": mine["id"], "parent_id": target}),
                _command("todo_move", {"id": mine["id"], "list_id": target}),
                _command("list_move", {"id": target}),
                _command("list_move", {"id": my_list["id"], "after_id": target}),
            ]
            response = await api.request("POST", "/api/batch", json={"commands": commands})
            assert response.status_code == 200
            masked = response.content.replace(target.encode(), b"<sent id>")
            bodies.append([(r["status"], r["error"]) for r in orjson.loads(masked)["results"]])
        theirs, missing = bodies
        assert [status for status, _ in theirs] == [404, 422, 422, 422, 404, 422]
        assert theirs == missing
    assert await _snapshot(other_api) == before
    assert (await api.request("GET", f"/api/todos/{mine['id']}")).json() == mine
