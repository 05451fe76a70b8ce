"""Batch: commands in order, each atomic on its own (savepoints), with the REST route's status and
error body, temp ids, per-command preconditions, results stored by command uuid (a resent queue is
not applied twice), quotas and rate limits counting commands, a 1 MiB body cap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api import Api
from tests.conftest import AppClientFactory

type Json = dict[str, Any]


def command(kind: str, args: Json | None = None, temp_id: str | None = None, key: uuid.UUID | None = None) -> Json:
    sent: Json = {"type": kind, "uuid": str(key or uuid.uuid4()), "args": args or {}}
    if temp_id is not None:
        sent["temp_id"] = temp_id
    return sent


async def batch(api: Api, *commands: Json, **extra: Any) -> Json:
    response = await api.request("POST", "/api/batch", json={"commands": list(commands), **extra})
    assert response.status_code == 200, response.text
    body: Json = response.json()
    assert [result["uuid"] for result in body["results"]] == [sent["uuid"] for sent in commands]
    return body


async def test_every_command_type_with_temp_ids(api: Api) -> None:
    body = await batch(
        api,
        command("list_add", {"name": "Groceries"}, "tmp-list"),
        command("todo_add", {"title": "Milk", "list_id": "tmp-list"}, "tmp-1"),
        command("todo_update", {"id": "tmp-1", "completed": True}),
        command("list_update", {"id": "tmp-list", "name": "Food"}),
        command("todo_delete", {"id": "tmp-1"}),
        command("todo_restore", {"id": "tmp-1"}),
        command("list_delete", {"id": "tmp-list"}),
        command("list_restore", {"id": "tmp-list"}),
    )
    statuses = [result["status"] for result in body["results"]]
    assert statuses == [201, 201, 200, 200, 204, 200, 204, 200]
    mapping = body["temp_id_mapping"]
    assert set(mapping) == {"tmp-list", "tmp-1"}
    todo = (await api.request("GET", f"/api/todos/{mapping['tmp-1']}")).json()
    assert (todo["title"], todo["completed"], todo["list_id"]) == ("Milk", True, mapping["tmp-list"])
    assert body["results"][5]["resource"] == todo
    restored_list = (await api.request("GET", f"/api/lists/{mapping['tmp-list']}")).json()
    assert body["results"][7]["resource"] == restored_list
    assert (restored_list["name"], restored_list["todo_count"]) == ("Food", 1)
    assert set(body["results"][4]) == {"uuid", "status"}
    assert isinstance(body["sync_token"], str)


async def test_a_failing_command_is_rolled_back_alone_with_the_routes_error(api: Api) -> None:
    await api.create_list("Taken")
    missing = str(uuid.uuid4())
    body = await batch(
        api,
        command("todo_add", {"title": "kept"}, "kept"),
        command("list_add", {"name": "taken"}),
        command("todo_update", {"id": missing, "title": "x"}),
        command("todo_add", {"title": ""}),
        command("todo_add", {"title": "in a missing list", "list_id": missing}),
        command("todo_update", {"id": "tmp-unknown", "title": "x"}),
        command("todo_add", {"title": "also kept"}),
    )
    results = body["results"]
    assert [result["status"] for result in results] == [201, 409, 404, 422, 422, 422, 201]
    assert results[1]["error"] == {"detail": "A list with this name already exists", "code": "duplicate_name"}
    rest = await api.request("PATCH", f"/api/todos/{missing}", json={"title": "x"})
    assert results[2]["error"] == rest.json()
    assert results[3]["error"]["code"] == "validation_failed"
    assert results[3]["error"]["detail"][0]["loc"] == ["body", "title"]
    assert results[4]["error"]["detail"][0]["loc"] == ["body", "list_id"]
    assert results[5]["error"]["detail"][0]["loc"] == ["path", "todo_id"]
    titles = {todo["title"] for todo in await api.all_pages("/api/todos")}
    assert titles == {"kept", "also kept"}
    assert [item["name"] for item in await api.all_pages("/api/lists")] == ["Taken"]


async def test_if_match_and_if_version_give_412_per_command(api: Api) -> None:
    todo = await api.create_todo(title="v1")
    work = await api.create_list("Work")
    etag = (await api.request("GET", f"/api/lists/{work['id']}")).headers["etag"]
    body = await batch(
        api,
        command("todo_update", {"id": todo["id"], "title": "v2", "if_version": 1}),
        command("todo_update", {"id": todo["id"], "title": "stale", "if_version": 1}),
        command("todo_delete", {"id": todo["id"], "if_match": '"1"'}),
        command("list_update", {"id": work["id"], "name": "Job", "if_match": etag}),
        command("list_delete", {"id": work["id"], "if_match": etag}),
        command("list_update", {"id": work["id"], "name": "x", "if_version": 1}),
        command("todo_update", {"id": todo["id"], "if_version": "1"}),
    )
    assert [result["status"] for result in body["results"]] == [200, 412, 412, 200, 412, 422, 422]
    assert body["results"][1]["error"]["code"] == "precondition_failed"
    assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["title"] == "v2"


async def test_a_commands_if_match_may_name_several_tags(api: Api) -> None:
    """`if_match` is read as `If-Match`: a list of tags. A list command naming two or more list tags
    (the current one among them, or not) is 200 or 412, like the REST route (two or more were a
    500 on both before 892a1e1)."""
    work = await api.create_list("Work")
    etag = (await api.request("GET", f"/api/lists/{work['id']}")).headers["etag"]
    stale = '"90.0.0", "91.3.1"'
    body = await batch(
        api,
        command("list_update", {"id": work["id"], "name": "Never", "if_match": stale}),
        command("list_update", {"id": work["id"], "name": "Job", "if_match": f"{stale}, {etag}"}),
        command("list_delete", {"id": work["id"], "if_match": f"{etag}, {stale}"}),  # the update changed it
    )
    assert [result["status"] for result in body["results"]] == [412, 200, 412]
    current = body["results"][1]["resource"]
    assert current["name"] == "Job"
    tag = (await api.request("GET", f"/api/lists/{work['id']}")).headers["etag"]
    again = await batch(api, command("list_delete", {"id": work["id"], "if_match": f'"1.0.0", {tag}, "2.0.0"'}))
    assert [result["status"] for result in again["results"]] == [204]


async def test_require_if_match_holds_for_commands_too(app_client: AppClientFactory, auth: Any) -> None:
    """REQUIRE_IF_MATCH=true: an update or delete command without `if_match`/`if_version` is 428
    for that command, as its route without If-Match; adds, moves and restores need none (README)."""
    async with app_client(require_if_match=True) as client:
        api = Api(client, auth())
        todo = await api.create_todo(title="v1")
        work = await api.create_list("Work")
        body = await batch(
            api,
            command("todo_update", {"id": todo["id"], "title": "unconditional"}),
            command("todo_update", {"id": todo["id"], "title": "null", "if_match": None}),
            command("todo_delete", {"id": todo["id"]}),
            command("list_update", {"id": work["id"], "name": "Job"}),
            command("list_delete", {"id": work["id"]}),
            command("todo_update", {"id": todo["id"], "title": "v2", "if_version": 1}),
            command("todo_add", {"title": "added"}, "new"),
            command("todo_move", {"id": "new", "after_id": todo["id"]}),
            command("todo_delete", {"id": "new", "if_match": "*"}),
            command("todo_restore", {"id": "new"}),
        )
        statuses = [result["status"] for result in body["results"]]
        assert statuses == [428, 428, 428, 428, 428, 200, 201, 200, 204, 200]
        assert body["results"][0]["error"]["code"] == "precondition_required"
        assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["title"] == "v2"
        assert (await api.request("GET", f"/api/lists/{work['id']}")).json()["name"] == "Work"


async def test_a_resent_queue_is_not_applied_twice(api: Api) -> None:
    queue = [
        command("list_add", {"name": "Home"}, "home"),
        command("todo_add", {"title": "once", "list_id": "home"}, "t"),
        command("todo_update", {"id": "t", "priority": "high"}),
    ]
    first = await batch(api, *queue)
    again = await batch(api, *queue, command("todo_add", {"title": "new", "list_id": "home"}))
    assert again["results"][:3] == first["results"]
    assert again["temp_id_mapping"] == first["temp_id_mapping"]
    assert again["results"][3]["status"] == 201
    assert again["results"][3]["resource"]["list_id"] == first["temp_id_mapping"]["home"]
    titles = sorted(todo["title"] for todo in await api.all_pages("/api/todos"))
    assert titles == ["new", "once"]
    # The same uuid for another command is refused for that command only.
    reused = await batch(api, {**queue[1], "args": {"title": "different"}})
    assert reused["results"][0]["status"] == 422
    assert reused["results"][0]["error"]["code"] == "idempotency_key_reused"
    # A failed command is not remembered: resent, it runs again.
    failing = command("list_add", {"name": "home"})
    assert (await batch(api, failing))["results"][0]["status"] == 409
    await api.request("PATCH", f"/api/lists/{first['temp_id_mapping']['home']}", json={"name": "House"})
    assert (await batch(api, failing))["results"][0]["status"] == 201


async def test_another_users_stored_results_and_temp_ids_do_not_leak(api: Api, other_api: Api) -> None:
    sent = command("todo_add", {"title": "mine"}, "t")
    await batch(api, sent)
    theirs = await batch(other_api, sent, command("todo_update", {"id": "t", "title": "x"}))
    assert theirs["results"][0]["status"] == 201  # their own command, applied for them
    assert theirs["results"][0]["resource"]["id"] != (await api.all_pages("/api/todos"))[0]["id"]
    assert [todo["title"] for todo in await api.all_pages("/api/todos")] == ["mine"]


async def test_quotas_count_commands(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(max_todos_per_user=2) as client:
        api = Api(client, auth())
        body = await batch(api, *(command("todo_add", {"title": f"t{n}"}) for n in range(3)))
        assert [result["status"] for result in body["results"]] == [201, 201, 409]
        assert body["results"][2]["error"]["code"] == "quota_exceeded"


async def test_rate_limits_count_commands(app_client: AppClientFactory, auth: Callable[..., dict[str, str]]) -> None:
    async with app_client(rate_limit_requests=10) as client:
        api = Api(client, auth())
        queue = [command("todo_add", {"title": f"t{n}"}) for n in range(8)]
        assert (await api.request("POST", "/api/batch", json={"commands": queue})).status_code == 200
        refused = await api.request("POST", "/api/batch", json={"commands": queue[:3]})
        assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
        assert refused.headers["retry-after"]
        assert len(await api.all_pages("/api/todos")) == 8  # one request left in the window


async def test_a_batch_over_the_rate_limit_runs_none_of_its_commands(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]], db_engine: AsyncEngine
) -> None:
    """README (Batch): "Quotas and rate limits count commands, not requests (...) over it the whole
    batch is 429 and nothing runs". Fresh command uuids: a refused batch creates no todo and stores
    no result, so once the window is over the same commands are applied then (201, new todos)."""
    headers = auth()
    first = [command("todo_add", {"title": f"t{n}"}) for n in range(8)]
    over = [command("todo_add", {"title": f"over {n}"}) for n in range(3)]
    async with app_client(rate_limit_requests=10) as client:
        api = Api(client, headers)
        await batch(api, *first)  # 8 commands: 8 of the window's 10
        refused = await api.request("POST", "/api/batch", json={"commands": over})  # 2 requests, 11 commands
        assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
    async with app_client() as client:  # the window is over (here: no limit at all)
        api = Api(client, headers)
        before = await api.all_pages("/api/todos")
        assert sorted(todo["title"] for todo in before) == sorted(f"t{n}" for n in range(8))
        again = await batch(api, *over)
        assert [result["status"] for result in again["results"]] == [201, 201, 201]
        created = [result["resource"] for result in again["results"]]
        assert [todo["title"] for todo in created] == ["over 0", "over 1", "over 2"]
        assert not {todo["id"] for todo in created} & {todo["id"] for todo in before}  # new rows, not replays
        after = {todo["id"] for todo in await api.all_pages("/api/todos")}
        assert after == {todo["id"] for todo in before} | {todo["id"] for todo in created}


@pytest.mark.parametrize(
    "body",
    [
        {"commands": []},
        {"commands": [command("todo_add", {"title": "t"}) for _ in range(101)]},
        {"commands": [{"type": "todo_fly", "uuid": str(uuid.uuid4()), "args": {}}]},
        {"commands": [{"type": "todo_add", "uuid": "not-a-uuid", "args": {}}]},
        {"commands": [command("todo_add", {}, "bad temp id")]},
        {"commands": [command("todo_add", {"title": "t"})], "extra": 1},
        {"commands": [command("todo_add", {"title": "t"})], "sync_token": "garbage"},
    ],
)
async def test_bad_batches_are_422_and_apply_nothing(api: Api, body: Json) -> None:
    response = await api.request("POST", "/api/batch", json=body)
    assert response.status_code == 422, response.text
    assert await api.all_pages("/api/todos") == []


async def test_temp_ids_name_one_add_each(api: Api) -> None:
    body = await batch(
        api,
        command("todo_add", {"title": "first"}, "dup"),
        command("list_add", {"name": "second"}, "dup"),
        command("todo_update", {"id": "dup", "title": "renamed"}, "other"),
        command("todo_update", {"id": "dup", "priority": "high"}),
    )
    assert [result["status"] for result in body["results"]] == [201, 422, 422, 200]
    assert body["results"][1]["error"]["detail"][0]["loc"] == ["body", "commands", 1, "temp_id"]
    assert body["results"][3]["resource"]["title"] == "first"
    assert set(body["temp_id_mapping"]) == {"dup"}


async def test_the_body_cap_is_one_mebibyte(api: Api) -> None:
    big = [command("todo_add", {"title": "t", "description": "d" * 9_000}) for _ in range(100)]
    response = await api.request("POST", "/api/batch", json={"commands": big})
    assert response.status_code == 200, response.text  # ~900 kB: over MAX_BODY_BYTES, under 1 MiB
    assert (
        await api.request("POST", "/api/todos", json={"title": "t", "description": "d" * 70_000})
    ).status_code == 413
    huge = [command("todo_add", {"title": "t", "description": "d" * 10_000})] * 110
    too_large = await api.request("POST", "/api/batch", json={"commands": huge})
    assert (too_large.status_code, too_large.json()["code"]) == (413, "payload_too_large")


async def test_the_batch_token_continues_the_clients_token(api: Api) -> None:
    elsewhere = await api.create_todo(title="before")
    full = (await api.request("GET", "/api/sync")).json()
    await api.request("PATCH", f"/api/todos/{elsewhere['id']}", json={"title": "changed by another device"})
    body = await batch(api, command("todo_add", {"title": "offline"}), sync_token=full["sync_token"])
    changes = (await api.request("GET", "/api/sync", params={"sync_token": body["sync_token"]})).json()
    assert {todo["title"] for todo in changes["todos"]} == {"changed by another device", "offline"}


async def _until_a_fresh_token_starts_after(api: Api, todo_id: str) -> None:
    """Wait until a token minted now no longer reaches back to `todo_id`'s last write. (A token starts
    at the oldest transaction running anywhere on the server: other test workers' transactions may
    hold it back for a moment; see tests/test_sync.py.)"""
    async with asyncio.timeout(30):
        while True:
            fresh = (await api.request("GET", "/api/sync")).json()["sync_token"]
            since = await api.request("GET", "/api/sync", params={"sync_token": fresh})
            assert since.status_code == 200, since.text
            if todo_id not in {todo["id"] for todo in since.json()["todos"]}:
                return
            await asyncio.sleep(0.05)


async def test_a_batch_without_a_token_starts_its_token_at_the_batch(api: Api) -> None:
    """README (Batch): "The response's `sync_token` continues the one you sent (...); without one, it
    starts at this batch". A sync with it returns the batch's own writes (README: "Incremental sync
    with the batch's token: (...) this batch's") and what came after, not what came before."""
    before = await api.create_todo(title="before")
    await _until_a_fresh_token_starts_after(api, before["id"])
    body = await batch(api, command("todo_add", {"title": "in the batch"}))
    in_batch = body["results"][0]["resource"]
    after = await api.create_todo(title="after")
    response = await api.request("GET", "/api/sync", params={"sync_token": body["sync_token"]})
    assert response.status_code == 200, response.text
    changes = response.json()
    assert changes["has_more"] is False
    assert sorted(changes["todos"], key=lambda todo: todo["title"]) == [after, in_batch]
    assert changes["deleted"] == {"todos": [], "lists": []}


async def test_moves_with_temp_ids(api: Api) -> None:
    first_list = await api.create_list("First")
    body = await batch(
        api,
        command("list_add", {"name": "Trip"}, "trip"),
        command("list_move", {"id": "trip", "after_id": None}),
        command("todo_add", {"title": "pack", "list_id": "trip"}, "pack"),
        command("todo_add", {"title": "passport", "parent_id": "pack"}, "passport"),
        command("todo_add", {"title": "book"}, "book"),
        command("todo_move", {"id": "book", "list_id": "trip", "after_id": "pack"}),
        command("todo_move", {"id": "book", "parent_id": "pack", "after_id": "passport"}),
        command("list_move", {"id": first_list["id"], "after_id": "trip"}),
    )
    results, mapping = body["results"], body["temp_id_mapping"]
    assert [result["status"] for result in results] == [201, 200, 201, 201, 201, 200, 200, 200]
    assert (results[3]["resource"]["parent_id"], results[3]["resource"]["list_id"]) == (
        mapping["pack"],
        mapping["trip"],
    )
    book = (await api.request("GET", f"/api/todos/{mapping['book']}")).json()
    assert results[6]["resource"] == book
    assert (book["parent_id"], book["list_id"]) == (mapping["pack"], mapping["trip"])
    children = await api.all_pages("/api/todos", parent_id=mapping["pack"], sort="position")
    assert [todo["title"] for todo in children] == ["passport", "book"]
    lists = await api.all_pages("/api/lists", sort="position")
    assert [item["name"] for item in lists] == ["Trip", "First"]
    assert results[7]["resource"] == lists[1]


async def test_moves_fail_like_the_rest_routes(api: Api) -> None:
    todo = await api.create_todo(title="t")
    work = await api.create_list("Work")
    missing = str(uuid.uuid4())
    cases: list[tuple[Json, str, Json]] = [
        (command("todo_move", {"id": missing}), f"/api/todos/{missing}/move", {}),
        (
            command("todo_move", {"id": todo["id"], "after_id": missing}),
            f"/api/todos/{todo['id']}/move",
            {"after_id": missing},
        ),
        (
            command("todo_move", {"id": todo["id"], "parent_id": missing}),
            f"/api/todos/{todo['id']}/move",
            {"parent_id": missing},
        ),
        (
            command("todo_move", {"id": todo["id"], "list_id": missing}),
            f"/api/todos/{todo['id']}/move",
            {"list_id": missing},
        ),
        (
            command("todo_move", {"id": todo["id"], "parent_id": todo["id"]}),
            f"/api/todos/{todo['id']}/move",
            {"parent_id": todo["id"]},
        ),
        (command("todo_move", {"id": todo["id"], "if_version": 1}), f"/api/todos/{todo['id']}/move", {"if_version": 1}),
        (command("list_move", {"id": missing}), f"/api/lists/{missing}/move", {}),
        (
            command("list_move", {"id": work["id"], "after_id": missing}),
            f"/api/lists/{work['id']}/move",
            {"after_id": missing},
        ),
        (
            command("list_move", {"id": work["id"], "after_id": work["id"]}),
            f"/api/lists/{work['id']}/move",
            {"after_id": work["id"]},
        ),
        (
            command("list_move", {"id": work["id"], "before_id": None}),
            f"/api/lists/{work['id']}/move",
            {"before_id": None},
        ),
    ]
    body = await batch(api, *(sent for sent, _, _ in cases))
    for result, (_, path, rest_body) in zip(body["results"], cases, strict=True):
        rest = await api.request("POST", path, json=rest_body)
        assert rest.status_code in {404, 422}, (path, rest.text)
        assert (result["status"], result["error"]) == (rest.status_code, rest.json()), path
    assert [r["status"] for r in body["results"][:2]] == [404, 422]
    bad_id = await batch(api, command("todo_move", {"id": "tmp-unknown"}), command("list_move", {"id": 3}))
    assert [r["error"]["detail"][0]["loc"] for r in bad_id["results"]] == [["path", "todo_id"], ["path", "list_id"]]
    assert (await api.request("GET", f"/api/todos/{todo['id']}")).json() == todo


async def test_a_resent_move_returns_its_stored_result(api: Api) -> None:
    a, b = await api.create_todo(title="a"), await api.create_todo(title="b")
    first_list, second_list = await api.create_list("One"), await api.create_list("Two")
    queue = [
        command("todo_move", {"id": a["id"], "after_id": b["id"]}),
        command("list_move", {"id": first_list["id"], "after_id": second_list["id"]}),
    ]
    first = await batch(api, *queue)
    assert [result["status"] for result in first["results"]] == [200, 200]
    # Meanwhile, another device moves them back: the resent queue does not move them again.
    await api.request("POST", f"/api/todos/{a['id']}/move", json={"after_id": None})
    await api.request("POST", f"/api/lists/{first_list['id']}/move", json={"after_id": None})
    again = await batch(api, *queue)
    assert again["results"] == first["results"]
    assert [todo["title"] for todo in await api.all_pages("/api/todos", sort="position")] == ["a", "b"]
    assert [item["name"] for item in await api.all_pages("/api/lists", sort="position")] == ["One", "Two"]


async def test_adds_and_updates_take_the_planner_fields(api: Api) -> None:
    recurring = {"due_at": "2030-01-01T09:00:00Z", "recurrence": "FREQ=DAILY", "time_zone": "Europe/Berlin"}
    body = await batch(
        api,
        command("todo_add", {"title": "parent", "reminders": [{"at": "2030-01-01T08:00:00Z"}]}, "parent"),
        command("todo_add", {"title": "daily", "reminders": [{"before_due": "PT15M"}], **recurring}, "daily"),
        command("todo_update", {"id": "daily", "parent_id": "parent", "time_zone": "Asia/Tokyo"}),
        command("todo_update", {"id": "daily", "recurrence": "FREQ=NEVER"}),
        command("todo_add", {"title": "orphan", "parent_id": str(uuid.uuid4())}),
    )
    results, mapping = body["results"], body["temp_id_mapping"]
    assert [result["status"] for result in results] == [201, 201, 200, 422, 422]
    daily = await api.request("GET", f"/api/todos/{mapping['daily']}")
    assert results[2]["resource"] == daily.json()
    assert (daily.json()["parent_id"], daily.json()["time_zone"]) == (mapping["parent"], "Asia/Tokyo")
    assert (daily.json()["recurrence"], daily.json()["reminders"]) == ("FREQ=DAILY", [{"before_due": "PT15M"}])
    assert results[3]["error"]["detail"][0]["loc"] == ["body", "recurrence"]
    assert results[4]["error"]["detail"][0]["loc"] == ["body", "parent_id"]
