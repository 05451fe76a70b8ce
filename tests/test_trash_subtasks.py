"""The trash and subtasks: DELETE of a todo takes its live subtasks (every level) to the trash,
where only the todo is an item; restoring it brings exactly those back, as they were, within the
quota; a subtask deleted on its own before stays an item; a purge takes the subtree for good; and
the planner sees live todos only (a trashed todo is 404 to write, 422 to name, never reminds)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tests.api import Api
from tests.conftest import AppClientFactory
from todo_api.models import Todo, User

type Json = dict[str, Any]
NAMES = ("parent", "child", "sibling", "grandchild", "leaf")  # leaf: depth 3, the deepest level
DAY = {"from": "2030-01-01T00:00:00Z", "to": "2030-01-02T00:00:00Z"}


async def _tree(api: Api, list_id: str | None = None) -> dict[str, Json]:
    """parent > (child > grandchild > leaf, sibling), each with a reminder on 2030-01-01."""
    made: dict[str, str] = {}
    for hour, (name, parent) in enumerate(
        (("parent", None), ("child", "parent"), ("sibling", "parent"), ("grandchild", "child"), ("leaf", "grandchild"))
    ):
        at = {"at": f"2030-01-01T0{hour}:00:00Z"}
        placement = {"parent_id": made[parent]} if parent else {"list_id": list_id}
        made[name] = (await api.create_todo(title=name, reminders=[at], **placement))["id"]
    return {name: await _get(api, made[name]) for name in NAMES}


async def _get(api: Api, todo_id: str) -> Json:
    response = await api.request("GET", f"/api/todos/{todo_id}")
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


async def _statuses(api: Api, tree: dict[str, Json]) -> dict[str, int]:
    return {name: (await api.request("GET", f"/api/todos/{todo['id']}")).status_code for name, todo in tree.items()}


def _without_updated_at(todo: Json) -> Json:
    return {key: value for key, value in todo.items() if key != "updated_at"}


async def _depths(engine: AsyncEngine, tree: dict[str, Json]) -> dict[str, int]:
    ids = {uuid.UUID(todo["id"]): name for name, todo in tree.items()}
    async with engine.connect() as connection:
        rows = (await connection.execute(select(col(Todo.id), col(Todo.depth)).where(col(Todo.id).in_(ids)))).all()
    return {ids[row[0]]: row[1] for row in rows}


async def _trash_ids(api: Api) -> list[str]:
    return [item["id"] for item in await api.all_pages("/api/trash")]


async def _listed(api: Api, tree: dict[str, Json], list_id: str | None) -> set[str]:
    """Every todo id any listing shows, across filters and sorts that could reach the subtree."""
    queries: list[Json] = [
        {},
        {"sort": "position"},
        {"sort": "position", "list_id": list_id or "none"},
        {"parent_id": "none"},
        {"completed": "false", "sort": "-due_at"},
        {"q": "child"},
        {"completed_after": "2000-01-01T00:00:00Z"},
    ]
    queries += [{"parent_id": todo["id"], "sort": "position"} for todo in tree.values()]
    return {todo["id"] for query in queries for todo in await api.all_pages("/api/todos", **query)}


async def _reminded(api: Api) -> set[str]:
    return {item["todo_id"] for item in await api.all_pages("/api/reminders", **DAY)}


async def test_deleting_a_parent_trashes_its_subtree_and_restoring_brings_it_back_as_it_was(
    api: Api, db_engine: AsyncEngine
) -> None:
    work = await api.create_list("Work")
    tree = await _tree(api, work["id"])
    kept = await api.create_todo(title="kept", list_id=work["id"])
    depths = await _depths(db_engine, tree)
    assert depths == {"parent": 0, "child": 1, "sibling": 1, "grandchild": 2, "leaf": 3}
    assert (await api.request("DELETE", f"/api/todos/{tree['parent']['id']}")).status_code == 204
    assert set((await _statuses(api, tree)).values()) == {404}
    assert await _listed(api, tree, work["id"]) == {kept["id"]}
    assert await _trash_ids(api) == [tree["parent"]["id"]]
    counts = (await api.request("GET", f"/api/lists/{work['id']}")).json()
    assert (counts["todo_count"], counts["open_count"]) == (1, 1)
    restored = await api.request("POST", f"/api/trash/{tree['parent']['id']}/restore")
    assert restored.status_code == 200, restored.text
    for name, todo in tree.items():
        assert _without_updated_at(await _get(api, todo["id"])) == _without_updated_at(todo), name
    assert await _depths(db_engine, tree) == depths
    assert await _trash_ids(api) == []
    children = await api.all_pages("/api/todos", parent_id=tree["parent"]["id"], sort="position")
    assert [todo["title"] for todo in children] == ["child", "sibling"]
    assert (await api.request("GET", f"/api/lists/{work['id']}")).json()["todo_count"] == 6


async def test_the_quota_counts_the_subtree_out_and_back_in(
    app_client: AppClientFactory, auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client(max_todos_per_user=6) as client:
        api = Api(client, auth())
        tree = await _tree(api)
        await api.create_todo(title="sixth")
        assert (await api.request("POST", "/api/todos", json={"title": "7"})).status_code == 409
        await api.request("DELETE", f"/api/todos/{tree['parent']['id']}")
        newer = [await api.create_todo(title=f"new {n}") for n in range(5)]  # the five places are free
        for todo in newer[:4]:
            await api.request("DELETE", f"/api/todos/{todo['id']}")
        # Two live todos: the parent alone would fit, the parent with its four subtasks does not.
        refused = await api.request("POST", f"/api/trash/{tree['parent']['id']}/restore")
        assert (refused.status_code, refused.json()["code"]) == (409, "quota_exceeded")
        assert set((await _statuses(api, tree)).values()) == {404}
        assert tree["parent"]["id"] in await _trash_ids(api)
        await api.request("DELETE", f"/api/todos/{newer[4]['id']}")
        assert (await api.request("POST", f"/api/trash/{tree['parent']['id']}/restore")).status_code == 200
        assert set((await _statuses(api, tree)).values()) == {200}
        assert (await api.request("POST", "/api/todos", json={"title": "7"})).status_code == 409


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "one-batch"])
async def test_a_subtask_deleted_before_its_parent_stays_in_the_trash(api: Api, together: bool) -> None:
    tree = await _tree(api)
    first, then = tree["child"]["id"], tree["parent"]["id"]
    if together:  # one transaction: both deletions carry the same time
        commands = [{"type": "todo_delete", "uuid": str(uuid.uuid4()), "args": {"id": i}} for i in (first, then)]
        response = await api.request("POST", "/api/batch", json={"commands": commands})
        assert [result["status"] for result in response.json()["results"]] == [204, 204]
    else:
        await api.request("DELETE", f"/api/todos/{first}")
        await api.request("DELETE", f"/api/todos/{then}")
    assert set(await _trash_ids(api)) == {first, then}
    blocked = await api.request("POST", f"/api/trash/{first}/restore")
    assert (blocked.status_code, blocked.json()["code"]) == (409, "parent_in_trash")
    assert (await api.request("POST", f"/api/trash/{then}/restore")).status_code == 200
    statuses = await _statuses(api, tree)
    assert statuses == {"parent": 200, "sibling": 200, "child": 404, "grandchild": 404, "leaf": 404}
    assert await _trash_ids(api) == [first]
    assert (await api.request("POST", f"/api/trash/{first}/restore")).status_code == 200
    for name, todo in tree.items():
        assert _without_updated_at(await _get(api, todo["id"])) == _without_updated_at(todo), name


async def test_purging_the_parent_purges_the_subtree_and_sync_reports_every_id(
    api: Api, db_engine: AsyncEngine
) -> None:
    tree = await _tree(api)
    kept = await api.create_todo(title="kept")
    ids = {todo["id"] for todo in tree.values()}
    before = (await api.request("GET", "/api/sync")).json()["sync_token"]
    await api.request("DELETE", f"/api/todos/{tree['parent']['id']}")
    trashed = (await api.request("GET", "/api/sync", params={"sync_token": before})).json()
    assert set(trashed["deleted"]["todos"]) == ids
    assert (await api.request("DELETE", f"/api/trash/{tree['parent']['id']}")).status_code == 204
    for token in (before, trashed["sync_token"]):
        changes = (await api.request("GET", "/api/sync", params={"sync_token": token})).json()
        assert set(changes["deleted"]["todos"]) == ids
        assert {todo["id"] for todo in changes["todos"]} <= {kept["id"]}
    for todo_id in ids:
        assert (await api.request("POST", f"/api/trash/{todo_id}/restore")).status_code == 404
    assert await _trash_ids(api) == []
    async with db_engine.connect() as connection:
        left = select(col(Todo.id)).where(col(Todo.id).in_([uuid.UUID(todo_id) for todo_id in ids]))
        assert (await connection.execute(left)).all() == []
        owner = select(col(Todo.user_id)).where(col(Todo.id) == uuid.UUID(kept["id"]))
        count = select(col(User.todo_count)).where(col(User.id) == (await connection.execute(owner)).scalar_one())
        assert (await connection.execute(count)).scalar_one() == 1


async def test_a_restored_subtree_comes_back_whole_in_the_next_sync(api: Api) -> None:
    tree = await _tree(api)
    await api.request("DELETE", f"/api/todos/{tree['parent']['id']}")
    token = (await api.request("GET", "/api/sync")).json()["sync_token"]
    await api.request("POST", f"/api/trash/{tree['parent']['id']}/restore")
    changes = (await api.request("GET", "/api/sync", params={"sync_token": token})).json()
    assert changes["deleted"]["todos"] == []
    synced = {todo["id"]: todo for todo in changes["todos"]}
    for name, todo in tree.items():
        assert synced[todo["id"]] == await _get(api, todo["id"]), name


def _masked(response: Any, sent: str) -> tuple[int, bytes]:
    return response.status_code, response.content.replace(sent.encode(), b"<sent id>")


async def test_a_trashed_todo_is_404_to_write_and_422_to_name_like_a_random_id(api: Api) -> None:
    tree = await _tree(api)
    live = await api.create_todo(title="live")
    await api.request("DELETE", f"/api/todos/{tree['parent']['id']}")
    for name in ("parent", "grandchild"):  # deleted itself, or with its parent
        trashed = tree[name]["id"]
        for method, path, body in (
            ("PATCH", "/api/todos/{}", {"title": "x"}),
            ("PUT", "/api/todos/{}", {"title": "x"}),
            ("POST", "/api/todos/{}/move", {"after_id": None}),
            ("GET", "/api/todos/{}/completions", None),
        ):
            response = await api.request(method, path.format(trashed), json=body)
            assert response.status_code == 404, (name, method, path)
            assert response.content == (await api.request(method, path.format(uuid.uuid4()), json=body)).content
        for method, path, body in (
            ("POST", "/api/todos", {"title": "x", "parent_id": trashed}),
            ("PATCH", f"/api/todos/{live['id']}", {"parent_id": trashed}),
            ("PUT", f"/api/todos/{live['id']}", {"title": "live", "parent_id": trashed}),
            ("POST", f"/api/todos/{live['id']}/move", {"parent_id": trashed}),
            ("POST", f"/api/todos/{live['id']}/move", {"after_id": trashed}),
        ):
            random = str(uuid.uuid4())
            theirs = await api.request(method, path, json=body)
            missing = await api.request(
                method, path, json=orjson.loads(orjson.dumps(body).replace(trashed.encode(), random.encode()))
            )
            assert theirs.status_code == 422, (name, method, path, theirs.text)
            assert _masked(theirs, trashed) == _masked(missing, random)
    assert _without_updated_at(await _get(api, live["id"])) == _without_updated_at(live)
    assert await api.all_pages("/api/todos", parent_id="none") == [await _get(api, live["id"])]


async def test_reminders_of_a_trashed_subtree_do_not_fire_until_it_is_restored(api: Api) -> None:
    tree = await _tree(api)
    ids = {todo["id"] for todo in tree.values()}
    assert await _reminded(api) == ids
    await api.request("DELETE", f"/api/todos/{tree['child']['id']}")
    assert await _reminded(api) == {tree["parent"]["id"], tree["sibling"]["id"]}
    await api.request("DELETE", f"/api/todos/{tree['parent']['id']}")
    assert await _reminded(api) == set()
    await api.request("POST", f"/api/trash/{tree['parent']['id']}/restore")
    assert await _reminded(api) == {tree["parent"]["id"], tree["sibling"]["id"]}
    await api.request("POST", f"/api/trash/{tree['child']['id']}/restore")
    assert await _reminded(api) == ids


async def test_completing_a_parent_leaves_a_trashed_subtask_as_it_was(api: Api) -> None:
    tree = await _tree(api)
    await api.request("DELETE", f"/api/todos/{tree['child']['id']}")
    done = await api.request("PATCH", f"/api/todos/{tree['parent']['id']}", json={"completed": True})
    assert done.json()["completed"] is True
    assert (await _get(api, tree["sibling"]["id"]))["completed"] is True
    assert (await api.request("POST", f"/api/trash/{tree['child']['id']}/restore")).status_code == 200
    for name in ("child", "grandchild", "leaf"):
        todo = await _get(api, tree[name]["id"])
        assert (todo["completed"], todo["completed_at"]) == (False, None), name
        assert _without_updated_at(todo) == _without_updated_at(tree[name])
    history = await api.request("GET", f"/api/todos/{tree['child']['id']}/completions")
    assert history.json()["items"] == []


async def test_a_trashed_list_takes_the_whole_tree_and_brings_it_back(api: Api, db_engine: AsyncEngine) -> None:
    work = await api.create_list("Work")
    tree = await _tree(api, work["id"])
    depths = await _depths(db_engine, tree)
    await api.request("DELETE", f"/api/todos/{tree['leaf']['id']}")  # on its own, before the list
    assert (await api.request("DELETE", f"/api/lists/{work['id']}")).status_code == 204
    assert set((await _statuses(api, tree)).values()) == {404}
    assert set(await _trash_ids(api)) == {work["id"], tree["leaf"]["id"]}
    assert await _listed(api, tree, None) == set()
    assert (await api.request("POST", f"/api/trash/{work['id']}/restore")).status_code == 200
    assert (await _statuses(api, tree))["leaf"] == 404
    assert (await api.request("POST", f"/api/trash/{tree['leaf']['id']}/restore")).status_code == 200
    for name, todo in tree.items():
        assert _without_updated_at(await _get(api, todo["id"])) == _without_updated_at(todo), name
    assert await _depths(db_engine, tree) == depths
    assert (await api.request("GET", f"/api/lists/{work['id']}")).json()["todo_count"] == 5


async def test_a_trashed_subtask_follows_its_parents_move_and_comes_back_under_it(api: Api) -> None:
    work, home = await api.create_list("Work"), await api.create_list("Home")
    tree = await _tree(api, work["id"])
    await api.request("DELETE", f"/api/todos/{tree['child']['id']}")
    moved = await api.request("POST", f"/api/todos/{tree['parent']['id']}/move", json={"list_id": home["id"]})
    assert moved.status_code == 200, moved.text
    # The trashed subtree still counts toward the nesting limit: the parent cannot go one level down.
    host = await api.create_todo(title="host", list_id=home["id"])
    deeper = await api.request("POST", f"/api/todos/{tree['parent']['id']}/move", json={"parent_id": host["id"]})
    assert (deeper.status_code, deeper.json()["code"]) == (422, "validation_failed")
    assert (await api.request("POST", f"/api/trash/{tree['child']['id']}/restore")).status_code == 200
    for name in ("child", "grandchild", "leaf"):
        todo = await _get(api, tree[name]["id"])
        assert (todo["list_id"], todo["parent_id"]) == (home["id"], tree[name]["parent_id"]), name
    children = await api.all_pages("/api/todos", parent_id=tree["parent"]["id"], sort="position")
    assert [todo["title"] for todo in children] == ["child", "sibling"]
    counts = (await api.request("GET", f"/api/lists/{home['id']}")).json()
    assert counts["todo_count"] == 6
