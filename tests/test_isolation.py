"""Isolation matrix: one user can neither see, change, delete nor even detect another user's data.

User B owns two lists and four todos (two in lists, two in none); user A owns a little data of its
own. Every id-taking route is called with A's token and each of B's ids (todo ids *and* list ids on
*both* resources): the answer must be the very same 404 a random uuid gets, byte for byte. Every
test ends by checking that all of B's rows are unchanged (a checksum over every column, read from
the database, not through the API) and that B can still read everything it owns.
"""

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

USERS = metadata.tables["users"]
LISTS = metadata.tables["lists"]
TODOS = metadata.tables["todos"]

# Valid bodies, so that nothing but ownership can decide the answer. A list body reuses one of B's
# list names: were names checked against B's lists, a 409 would leak that B has such a list.
B_LIST_NAMES = ("Groceries", "Work")
TODO_BODY: Json = {
    "title": "Hijacked",
    "description": "written by A",
    "completed": True,
    "due_at": "2031-01-01T09:00:00Z",
    "priority": "high",
    "tags": ["mine"],
    "list_id": None,
}
BODIES: dict[tuple[str, str], Json | None] = {
    ("GET", "todos"): None,
    ("PUT", "todos"): TODO_BODY,
    ("PATCH", "todos"): {"title": "Hijacked", "completed": True, "list_id": None},
    ("DELETE", "todos"): None,
    ("GET", "lists"): None,
    ("PUT", "lists"): {"name": B_LIST_NAMES[1]},
    ("PATCH", "lists"): {"name": B_LIST_NAMES[1]},
    ("DELETE", "lists"): None,
}
EXPECTED_STATUS = {"GET": 200, "PUT": 200, "PATCH": 200, "DELETE": 204}


@dataclass(frozen=True, slots=True)
class World:
    a: Headers
    b: Headers
    b_user_id: uuid.UUID
    b_lists: list[Json]
    b_todos: list[Json]
    a_lists: list[Json]
    a_todos: list[Json]

    def b_ids(self, kind: str) -> list[str]:
        return [item["id"] for item in (self.b_todos if kind == "todo" else self.b_lists)]

    @property
    def all_b_ids(self) -> set[str]:
        return {*self.b_ids("todo"), *self.b_ids("list")}


async def _created(client: httpx.AsyncClient, path: str, body: Json, headers: Headers) -> Json:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: Json = response.json()
    return created


@pytest.fixture
async def world(client: httpx.AsyncClient, auth: Callable[..., Headers]) -> World:
    a, b = auth("isolation|user-a"), auth("isolation|user-b")  # same issuer, different subjects
    b_user_id = uuid.UUID((await client.get("/api/users/me", headers=b)).json()["id"])

    b_lists = [await _created(client, "/api/lists", {"name": name}, b) for name in B_LIST_NAMES]
    b_todos = [
        await _created(client, "/api/todos", body, b)
        for body in (
            {"title": "Milk", "tags": ["food"], "list_id": b_lists[0]["id"]},
            {"title": "Report", "completed": True, "priority": "high", "list_id": b_lists[1]["id"]},
            {"title": "Call mom", "due_at": "2030-05-01T18:00:00+02:00"},
            {"title": "Read a book", "description": "B's secret", "priority": "low", "tags": ["fun"]},
        )
    ]
    # A's own data: a list with the same name as one of B's (names are unique per user only).
    a_lists = [await _created(client, "/api/lists", {"name": B_LIST_NAMES[0]}, a)]
    a_todos = [
        await _created(client, "/api/todos", {"title": "A in list", "list_id": a_lists[0]["id"]}, a),
        await _created(client, "/api/todos", {"title": "A loose", "tags": ["food"]}, a),
        await _created(client, "/api/todos", {"title": "A done", "completed": True}, a),
    ]
    return World(a, b, b_user_id, b_lists, b_todos, a_lists, a_todos)


async def b_rows(engine: AsyncEngine, user_id: uuid.UUID) -> list[tuple[str, tuple[Any, ...]]]:
    """Every column of every row B owns (its user row, lists, todos), in a stable order."""
    rows: list[tuple[str, tuple[Any, ...]]] = []
    async with engine.connect() as connection:
        for table, owner in ((USERS, USERS.c.id), (LISTS, LISTS.c.user_id), (TODOS, TODOS.c.user_id)):
            result = await connection.execute(select(table).where(owner == user_id).order_by(table.c.id))
            rows.extend((table.name, tuple(row)) for row in result)
    return rows


def checksum(rows: list[tuple[str, tuple[Any, ...]]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


async def b_checksum(engine: AsyncEngine, world: World) -> str:
    rows = await b_rows(engine, world.b_user_id)
    assert len(rows) == 1 + len(world.b_lists) + len(world.b_todos)  # the checksum covers all of B
    return checksum(rows)


async def assert_b_intact(client: httpx.AsyncClient, engine: AsyncEngine, world: World, before: str) -> None:
    """B's rows are byte-for-byte unchanged, and B still reads all of its resources through the API."""
    assert await b_checksum(engine, world) == before
    me = await client.get("/api/users/me", headers=world.b)
    assert me.status_code == 200
    assert me.json()["id"] == str(world.b_user_id)
    for kind, items in (("todos", world.b_todos), ("lists", world.b_lists)):
        for item in items:
            response = await client.get(f"/api/{kind}/{item['id']}", headers=world.b)
            assert response.status_code == 200, response.text
            body = response.json()
            if kind == "lists":  # counts are computed per read; the stored fields must be as created
                body = {k: v for k, v in body.items() if k not in {"todo_count", "open_count"}}
                item = {k: v for k, v in item.items() if k not in {"todo_count", "open_count"}}
            assert body == item


def comparable_headers(response: httpx.Response) -> list[tuple[str, str]]:
    """All response headers except the per-request id."""
    return sorted((name, value) for name, value in response.headers.multi_items() if name != "x-request-id")


def assert_same_response(actual: httpx.Response, reference: httpx.Response) -> None:
    assert actual.status_code == reference.status_code
    assert actual.content == reference.content
    assert comparable_headers(actual) == comparable_headers(reference)


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: Headers, body: Json | None
) -> httpx.Response:
    return await client.request(method, path, headers=headers, json=body)


def _matrix() -> list[Any]:
    return [
        pytest.param(method, resource, kind, id=f"{method} /api/{resource}/{{id}} with B's {kind} id")
        for resource in ("todos", "lists")
        for method in ("GET", "PUT", "PATCH", "DELETE")
        for kind in ("todo", "list")
    ]


@pytest.mark.parametrize(("method", "resource", "kind"), _matrix())
async def test_another_users_id_gets_the_same_404_as_a_random_id_and_changes_nothing(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World, method: str, resource: str, kind: str
) -> None:
    before = await b_checksum(db_engine, world)
    body = BODIES[method, resource]

    reference = await call(client, method, f"/api/{resource}/{uuid.uuid4()}", world.a, body)
    assert reference.status_code == 404
    assert reference.json() == {"detail": "Not found", "code": "not_found"}

    for b_id in world.b_ids(kind):
        response = await call(client, method, f"/api/{resource}/{b_id}", world.a, body)
        assert_same_response(response, reference)

    # The same request with A's own id of the right kind succeeds: the 404 above is ownership,
    # not a malformed request. (For a mismatched kind, A's id is itself just another 404.)
    own = world.a_todos[0]["id"] if resource == "todos" else world.a_lists[0]["id"]
    if resource == "lists" and method in {"PUT", "PATCH"}:
        body = {"name": "A renamed"}
    assert (await call(client, method, f"/api/{resource}/{own}", world.a, body)).status_code == EXPECTED_STATUS[method]

    await assert_b_intact(client, db_engine, world, before)


def _without_input(response: httpx.Response) -> Any:
    body = response.json()
    for error in body["detail"]:
        error.pop("input", None)
    return body


@pytest.mark.parametrize(
    ("method", "target"),
    [
        pytest.param("POST", "new", id="POST /api/todos"),
        pytest.param("PUT", "own", id="PUT /api/todos/{A's todo}"),
        pytest.param("PATCH", "own", id="PATCH /api/todos/{A's todo}"),
    ],
)
async def test_another_users_list_id_in_a_todo_body_is_refused_like_a_random_list_id(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World, method: str, target: str
) -> None:
    before = await b_checksum(db_engine, world)
    own = world.a_todos[1]
    path = "/api/todos" if target == "new" else f"/api/todos/{own['id']}"
    body: Json = {"title": "Sneaky"} if method != "PATCH" else {}

    random_list = str(uuid.uuid4())
    reference = await call(client, method, path, world.a, {**body, "list_id": random_list})
    assert reference.status_code == 422
    assert [(e["loc"], e["input"]) for e in reference.json()["detail"]] == [(["body", "list_id"], random_list)]

    for b_list in world.b_lists:
        response = await call(client, method, path, world.a, {**body, "list_id": b_list["id"]})
        assert response.status_code == 422
        assert [e["input"] for e in response.json()["detail"]] == [b_list["id"]]
        assert _without_input(response) == _without_input(reference)
        assert comparable_headers(response) == comparable_headers(reference)  # ids have one length

    # Nothing was written for A either: no new todo, A's own todo untouched.
    todos = await client.get("/api/todos", headers=world.a, params={"limit": 200})
    assert sorted(t["id"] for t in todos.json()["items"]) == sorted(t["id"] for t in world.a_todos)
    assert (await client.get(f"/api/todos/{own['id']}", headers=world.a)).json() == own
    await assert_b_intact(client, db_engine, world, before)


async def test_filtering_todos_by_another_users_list_finds_nothing(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World
) -> None:
    before = await b_checksum(db_engine, world)
    random_list = await client.get("/api/todos", headers=world.a, params={"list_id": str(uuid.uuid4())})
    for b_list in world.b_lists:
        response = await client.get("/api/todos", headers=world.a, params={"list_id": b_list["id"]})
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}
        assert_same_response(response, random_list)
        # Combined with other filters B's todos would match, still nothing.
        params = {"list_id": b_list["id"], "tag": "food", "q": "Milk", "completed": "false"}
        assert (await client.get("/api/todos", headers=world.a, params=params)).json()["items"] == []
    await assert_b_intact(client, db_engine, world, before)


TODO_SORTS = ["created_at", "-created_at", "updated_at", "-updated_at", "due_at", "-due_at"]
TODO_SORTS += ["priority", "-priority", "title", "-title"]
# The planner's sorts list a part of the todos: one sibling group, the completed ones.
PARTIAL_SORTS = ["position", "completed_at", "-completed_at"]
LIST_SORTS = ["created_at", "-created_at", "name", "-name", "position"]


async def walk(client: httpx.AsyncClient, path: str, headers: Headers, params: dict[str, Any]) -> list[str]:
    """Every id on every page, following `next_cursor` to the end."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        response = await client.get(path, headers=headers, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


async def test_collections_never_include_another_users_resources(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World
) -> None:
    before = await b_checksum(db_engine, world)
    a_todo_ids = sorted(t["id"] for t in world.a_todos)
    a_list_ids = sorted(item["id"] for item in world.a_lists)
    # limit=1 makes every page boundary a cursor that could, if unscoped, step into B's rows.
    for sort in [*TODO_SORTS, *PARTIAL_SORTS]:
        for filters in ({}, {"list_id": "none"}, {"q": "a"}, {"tag": "food"}):
            ids = await walk(client, "/api/todos", world.a, {"sort": sort, "limit": 1, **filters})
            assert not set(ids) & world.all_b_ids, (sort, filters)
            assert len(ids) == len(set(ids))
            if not filters and sort not in PARTIAL_SORTS:
                assert sorted(ids) == a_todo_ids
    for sort in LIST_SORTS:
        ids = await walk(client, "/api/lists", world.a, {"sort": sort, "limit": 1})
        assert sorted(ids) == a_list_ids
    # A's list counts only count A's todos.
    a_list = (await client.get(f"/api/lists/{world.a_lists[0]['id']}", headers=world.a)).json()
    assert (a_list["todo_count"], a_list["open_count"]) == (1, 1)
    await assert_b_intact(client, db_engine, world, before)


async def test_deleting_an_account_leaves_other_accounts_untouched(
    client: httpx.AsyncClient, db_engine: AsyncEngine, world: World
) -> None:
    before = await b_checksum(db_engine, world)
    response = await client.delete("/api/users/me", headers=world.a)
    assert response.status_code == 204
    # A starts again empty; B's rows are exactly as they were.
    assert (await client.get("/api/todos", headers=world.a)).json() == {"items": [], "next_cursor": None}
    assert (await client.get("/api/lists", headers=world.a)).json() == {"items": [], "next_cursor": None}
    await assert_b_intact(client, db_engine, world, before)
