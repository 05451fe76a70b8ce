"""Isolation of the planner's routes and fields (issue 15): another user's todo or list ids in a
path, in `parent_id`, `after_id` or `list_id`, or as a filter, get exactly what a random id gets
(404 or 422, byte for byte but for the echoed input), and none of B's rows (todos, lists,
completions, reminder firing times) change."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from todo_api.models import metadata

type Json = dict[str, Any]
type Headers = dict[str, str]

OWNED = [(metadata.tables[name], metadata.tables[name].c.user_id) for name in ("lists", "todos", "todo_completions")]
OWNED.append((metadata.tables["reminder_fires"], metadata.tables["reminder_fires"].c.user_id))
WINDOW = {"from": "2030-01-01T00:00:00Z", "to": "2030-01-08T00:00:00Z"}


@dataclass(frozen=True, slots=True)
class World:
    a: Headers
    b: Headers
    b_user: str
    b_todos: list[str]
    b_lists: list[str]
    a_todo: str
    a_list: str


async def _post(client: httpx.AsyncClient, path: str, body: Json, headers: Headers) -> Json:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: Json = response.json()
    return created


@pytest.fixture
async def world(client: httpx.AsyncClient, auth: Callable[..., Headers]) -> World:
    a, b = auth("planner-isolation|a"), auth("planner-isolation|b")
    b_user = (await client.get("/api/users/me", headers=b)).json()["id"]
    b_list = await _post(client, "/api/lists", {"name": "B's"}, b)
    parent = await _post(client, "/api/todos", {"title": "B parent", "list_id": b_list["id"]}, b)
    child = await _post(client, "/api/todos", {"title": "B child", "parent_id": parent["id"]}, b)
    recurring = {"recurrence": "FREQ=DAILY", "due_at": "2030-01-02T09:00:00Z", "reminders": [{"before_due": "PT5M"}]}
    series = await _post(client, "/api/todos", {"title": "B daily", **recurring}, b)
    await client.patch(f"/api/todos/{series['id']}", json={"completed": True}, headers=b)
    a_list = await _post(client, "/api/lists", {"name": "A's"}, a)
    a_todo = await _post(client, "/api/todos", {"title": "A's", "list_id": a_list["id"]}, a)
    await _post(client, "/api/todos", {"title": "A's other", "list_id": a_list["id"]}, a)
    todos = [parent["id"], child["id"], series["id"]]
    return World(a, b, b_user, todos, [b_list["id"]], a_todo["id"], a_list["id"])


async def b_checksum(engine: AsyncEngine, world: World) -> str:
    rows = []
    async with engine.connect() as connection:
        for table, owner in OWNED:
            result = await connection.execute(select(table).where(owner == world.b_user))
            rows.extend(sorted(repr(tuple(row)) for row in result))
    assert len(rows) == 1 + 3 + 1 + 1  # a list, three todos, a completion, a firing time
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _same(actual: httpx.Response, reference: httpx.Response, *, strip_input: bool = False) -> None:
    assert actual.status_code == reference.status_code, actual.text
    body, expected = actual.json(), reference.json()
    if strip_input:
        for error in (*body["detail"], *expected["detail"]):
            error.pop("input")
    assert body == expected
    headers = sorted((k, v) for k, v in actual.headers.items() if k != "x-request-id")
    assert headers == sorted((k, v) for k, v in reference.headers.items() if k != "x-request-id")


PATH_CASES = [
    ("POST", "/api/todos/{id}/move", {"after_id": None}),
    ("GET", "/api/todos/{id}/completions", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PATH_CASES)
async def test_another_users_todo_in_a_path_is_404_like_a_random_id(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World, method: str, path: str, body: Json | None
) -> None:
    before = await b_checksum(db_engine, world)
    reference = await client.request(method, path.format(id=uuid.uuid4()), json=body, headers=world.a)
    assert reference.status_code == 404
    for b_id in [*world.b_todos, *world.b_lists]:
        _same(await client.request(method, path.format(id=b_id), json=body, headers=world.a), reference)
    own = await client.request(method, path.format(id=world.a_todo), json=body, headers=world.a)
    assert own.status_code == 200
    assert await b_checksum(db_engine, world) == before


async def test_another_users_list_cannot_be_moved_nor_followed(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World
) -> None:
    before = await b_checksum(db_engine, world)
    reference = await client.post(f"/api/lists/{uuid.uuid4()}/move", json={}, headers=world.a)
    assert reference.status_code == 404
    for b_id in [*world.b_lists, *world.b_todos]:
        _same(await client.post(f"/api/lists/{b_id}/move", json={}, headers=world.a), reference)
    path = f"/api/lists/{world.a_list}/move"
    reference = await client.post(path, json={"after_id": str(uuid.uuid4())}, headers=world.a)
    assert reference.status_code == 422
    for b_id in world.b_lists:
        _same(await client.post(path, json={"after_id": b_id}, headers=world.a), reference, strip_input=True)
    assert await b_checksum(db_engine, world) == before


def _body_cases(world: World, b_id: str) -> list[tuple[str, str, Json]]:
    """(method, path, body) of A's requests naming `b_id` as a parent, a sibling or a list."""
    own = f"/api/todos/{world.a_todo}"
    return [
        ("POST", "/api/todos", {"title": "x", "parent_id": b_id}),
        ("PUT", own, {"title": "x", "parent_id": b_id}),
        ("PATCH", own, {"parent_id": b_id}),
        ("POST", f"{own}/move", {"parent_id": b_id}),
        ("POST", f"{own}/move", {"after_id": b_id}),
        ("POST", f"{own}/move", {"list_id": b_id}),
    ]


async def test_another_users_ids_in_planner_fields_are_refused_like_random_ids(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World
) -> None:
    before = await b_checksum(db_engine, world)
    a_before = (await client.get(f"/api/todos/{world.a_todo}", headers=world.a)).json()
    random_cases = _body_cases(world, str(uuid.uuid4()))
    for b_id in [*world.b_todos, *world.b_lists]:
        for (method, path, body), (_, _, reference_body) in zip(_body_cases(world, b_id), random_cases, strict=True):
            reference = await client.request(method, path, json=reference_body, headers=world.a)
            assert reference.status_code == 422, (method, path, reference.text)
            response = await client.request(method, path, json=body, headers=world.a)
            _same(response, reference, strip_input=True)
            assert response.json()["detail"][0]["input"] == b_id
    assert (await client.get(f"/api/todos/{world.a_todo}", headers=world.a)).json() == a_before
    assert await b_checksum(db_engine, world) == before


async def test_filters_and_windows_never_show_another_users_data(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World
) -> None:
    before = await b_checksum(db_engine, world)
    reference = await client.get("/api/todos", params={"parent_id": str(uuid.uuid4())}, headers=world.a)
    for b_id in world.b_todos:
        for sort in ("position", "created_at"):
            response = await client.get("/api/todos", params={"parent_id": b_id, "sort": sort}, headers=world.a)
            assert response.json() == {"items": [], "next_cursor": None}
        _same(await client.get("/api/todos", params={"parent_id": b_id}, headers=world.a), reference)
    a_reminders = await client.get("/api/reminders", params=WINDOW, headers=world.a)
    assert a_reminders.json() == {"items": [], "next_cursor": None}
    b_reminders = await client.get("/api/reminders", params=WINDOW, headers=world.b)
    assert [item["todo_id"] for item in b_reminders.json()["items"]] == [world.b_todos[2]]
    for params in ({"sort": "completed_at"}, {"completed_after": "2000-01-01T00:00:00Z"}, {"sort": "position"}):
        ids = [item["id"] for item in (await client.get("/api/todos", params=params, headers=world.a)).json()["items"]]
        assert not set(ids) & set(world.b_todos)
    assert await b_checksum(db_engine, world) == before
