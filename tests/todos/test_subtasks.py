"""Subtasks (issue 15): `parent_id`, four levels, no cycles, same list, subtrees that move, complete
and go with their parent, and the `parent_id` filter."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tests.api import Api
from todo_api.models import Todo, TodoCompletion, User


async def _chain(api: Api, levels: int, **first: Any) -> list[dict[str, Any]]:
    """A top-level todo and `levels - 1` nested subtasks, each under the previous."""
    chain = [await api.create_todo(title="level 0", **first)]
    for level in range(1, levels):
        chain.append(await api.create_todo(title=f"level {level}", parent_id=chain[-1]["id"]))
    return chain


def _loc_and_message(response: Any) -> tuple[list[Any], str]:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    return error["loc"], error["msg"]


async def test_a_subtask_names_its_parent_and_takes_its_list(api: Api) -> None:
    groceries = await api.create_list("Groceries")
    parent = await api.create_todo(title="Shopping", list_id=groceries["id"])
    assert parent["parent_id"] is None
    child = await api.create_todo(title="Milk", parent_id=parent["id"])
    assert (child["parent_id"], child["list_id"]) == (parent["id"], groceries["id"])
    # Said explicitly, the same list is fine; another list (or none) is not.
    same = await api.create_todo(title="Eggs", parent_id=parent["id"], list_id=groceries["id"])
    assert same["list_id"] == groceries["id"]
    for other in (None, (await api.create_list("Work"))["id"]):
        response = await api.request(
            "POST", "/api/todos", json={"title": "x", "parent_id": parent["id"], "list_id": other}
        )
        assert _loc_and_message(response) == (["body", "parent_id"], "The parent is in another list")


async def test_subtasks_nest_four_levels_and_no_deeper(api: Api) -> None:
    chain = await _chain(api, 4)
    deepest = chain[-1]
    response = await api.request("POST", "/api/todos", json={"title": "level 4", "parent_id": deepest["id"]})
    loc, message = _loc_and_message(response)
    assert loc == ["body", "parent_id"]
    assert "at most 4 levels" in message
    # Moving a todo that has subtasks counts them: a two-level subtree fits under level 1, not 2.
    pair = await _chain(api, 2)
    assert (
        await api.request("PATCH", f"/api/todos/{pair[0]['id']}", json={"parent_id": chain[1]["id"]})
    ).status_code == 200
    moved = await api.request("GET", f"/api/todos/{pair[1]['id']}")
    assert moved.json()["parent_id"] == pair[0]["id"]
    response = await api.request("POST", f"/api/todos/{pair[0]['id']}/move", json={"parent_id": chain[2]["id"]})
    assert "at most 4 levels" in _loc_and_message(response)[1]


@pytest.mark.parametrize("how", ["patch", "put", "move"])
async def test_a_todo_cannot_go_under_itself_or_its_subtasks(api: Api, how: str) -> None:
    chain = await _chain(api, 3)
    for target in chain:  # itself, its child, its grandchild
        body = {"parent_id": target["id"]}
        if how == "patch":
            response = await api.request("PATCH", f"/api/todos/{chain[0]['id']}", json=body)
        elif how == "put":
            response = await api.request("PUT", f"/api/todos/{chain[0]['id']}", json={"title": "t", **body})
        else:
            response = await api.request("POST", f"/api/todos/{chain[0]['id']}/move", json=body)
        loc, message = _loc_and_message(response)
        assert loc == ["body", "parent_id"]
        assert "under itself or one of its subtasks" in message
    # Nothing moved.
    for todo in chain:
        assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["parent_id"] == todo["parent_id"]


async def test_moving_a_parent_to_another_list_moves_its_subtree(api: Api, db_engine: AsyncEngine) -> None:
    home, work = await api.create_list("Home"), await api.create_list("Work")
    chain = await _chain(api, 3, list_id=home["id"])
    moved = await api.request("PATCH", f"/api/todos/{chain[0]['id']}", json={"list_id": work["id"]})
    assert moved.status_code == 200
    for todo in chain:
        assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["list_id"] == work["id"]
    assert (await api.request("GET", f"/api/lists/{work['id']}")).json()["todo_count"] == 3
    # Through the move route too, into no list; the subtree keeps its shape.
    await api.request("POST", f"/api/todos/{chain[0]['id']}/move", json={"list_id": None})
    items = await api.all_pages("/api/todos", list_id="none")
    assert {item["id"]: item["parent_id"] for item in items} == {t["id"]: t["parent_id"] for t in chain}
    async with db_engine.connect() as connection:
        depths = dict((await connection.execute(select(col(Todo.id), col(Todo.depth)))).all())
    assert [depths[uuid.UUID(todo["id"])] for todo in chain] == [0, 1, 2]


async def test_a_subtask_sent_to_another_list_leaves_its_parent(api: Api, db_engine: AsyncEngine) -> None:
    work = await api.create_list("Work")
    chain = await _chain(api, 3)
    response = await api.request("PATCH", f"/api/todos/{chain[1]['id']}", json={"list_id": work["id"]})
    assert response.status_code == 200
    assert (response.json()["parent_id"], response.json()["list_id"]) == (None, work["id"])
    grandchild = (await api.request("GET", f"/api/todos/{chain[2]['id']}")).json()
    assert (grandchild["parent_id"], grandchild["list_id"]) == (chain[1]["id"], work["id"])
    async with db_engine.connect() as connection:
        depths = dict((await connection.execute(select(col(Todo.id), col(Todo.depth)))).all())
    assert depths[uuid.UUID(chain[1]["id"])] == 0
    assert depths[uuid.UUID(chain[2]["id"])] == 1


async def test_completing_a_parent_completes_its_open_subtasks(api: Api, db_engine: AsyncEngine) -> None:
    chain = await _chain(api, 3)
    done_before = await api.create_todo(title="done first", parent_id=chain[0]["id"], completed=True)
    first_done = done_before["completed_at"]
    response = await api.request("PATCH", f"/api/todos/{chain[0]['id']}", json={"completed": True})
    assert response.status_code == 200
    for todo in chain:
        assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["completed"] is True
    # An already completed subtask keeps its completion time.
    assert (await api.request("GET", f"/api/todos/{done_before['id']}")).json()["completed_at"] == first_done
    async with db_engine.connect() as connection:
        count = (await connection.execute(select(func.count()).select_from(TodoCompletion))).scalar_one()
    assert count == 4  # one per todo that became completed (and one for the one created completed)
    # Reopening the parent leaves its subtasks as they are.
    await api.request("PATCH", f"/api/todos/{chain[0]['id']}", json={"completed": False})
    assert (await api.request("GET", f"/api/todos/{chain[1]['id']}")).json()["completed"] is True


async def test_deleting_a_parent_deletes_its_subtree(api: Api, db_engine: AsyncEngine) -> None:
    chain = await _chain(api, 4)
    keep = await api.create_todo(title="unrelated")
    assert (await api.request("DELETE", f"/api/todos/{chain[1]['id']}")).status_code == 204
    for todo in chain[1:]:
        assert (await api.request("GET", f"/api/todos/{todo['id']}")).status_code == 404
    remaining = {item["id"] for item in await api.all_pages("/api/todos")}
    assert remaining == {chain[0]["id"], keep["id"]}
    # The quota counter (0004's triggers) counted the cascaded rows too.
    async with db_engine.connect() as connection:
        assert (await connection.execute(select(col(User.todo_count)))).scalar_one() == 2


async def test_filtering_by_parent(api: Api) -> None:
    chain = await _chain(api, 3)
    sibling = await api.create_todo(title="sibling", parent_id=chain[0]["id"])
    loose = await api.create_todo(title="loose")
    children = await api.all_pages("/api/todos", parent_id=chain[0]["id"], sort="position")
    assert [item["id"] for item in children] == [chain[1]["id"], sibling["id"]]
    top = await api.all_pages("/api/todos", parent_id="none", sort="created_at")
    assert [item["id"] for item in top] == [chain[0]["id"], loose["id"]]
    assert await api.all_pages("/api/todos", parent_id=str(uuid.uuid4())) == []
    bad = await api.request("GET", "/api/todos", params={"parent_id": "nope"})
    assert bad.status_code == 422


async def test_a_missing_parent_is_refused_like_a_missing_list(api: Api) -> None:
    missing = str(uuid.uuid4())
    response = await api.request("POST", "/api/todos", json={"title": "x", "parent_id": missing})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "value_error", "loc": ["body", "parent_id"], "msg": "Parent not found", "input": missing}
    ]
    assert response.json()["code"] == "validation_failed"
