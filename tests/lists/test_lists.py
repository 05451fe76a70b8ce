"""The list resource: CRUD, unique names, counts, sorting and pages, cascade to todos."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api import Api


async def test_create_returns_201_location_and_zero_counts(api: Api) -> None:
    response = await api.request("POST", "/api/lists", json={"name": "  Groceries "})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "name", "created_at", "updated_at", "todo_count", "open_count", "position"}
    assert created["name"] == "Groceries"
    assert (created["todo_count"], created["open_count"]) == (0, 0)
    assert response.headers["location"] == f"/api/lists/{created['id']}"
    assert (await api.request("GET", response.headers["location"])).json() == created


async def test_counts_follow_the_todos(api: Api) -> None:
    work = await api.create_list("Work")
    for completed in (True, False, False):
        await api.create_todo(title="t", list_id=work["id"], completed=completed)
    await api.create_todo(title="elsewhere")
    fetched = (await api.request("GET", f"/api/lists/{work['id']}")).json()
    assert (fetched["todo_count"], fetched["open_count"]) == (3, 2)
    listed = (await api.request("GET", "/api/lists")).json()["items"]
    assert [(item["todo_count"], item["open_count"]) for item in listed] == [(3, 2)]
    renamed = (await api.request("PATCH", f"/api/lists/{work['id']}", json={"name": "Job"})).json()
    assert (renamed["name"], renamed["todo_count"], renamed["open_count"]) == ("Job", 3, 2)


async def test_names_are_unique_per_user_case_insensitively(api: Api, other_api: Api) -> None:
    first = await api.create_list("Work")
    duplicate = await api.request("POST", "/api/lists", json={"name": "WORK"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "A list with this name already exists", "code": "duplicate_name"}
    assert (await other_api.request("POST", "/api/lists", json={"name": "work"})).status_code == 201
    second = await api.create_list("Home")
    for method in ("PUT", "PATCH"):
        clash = await api.request(method, f"/api/lists/{second['id']}", json={"name": " work"})
        assert clash.status_code == 409
    same = await api.request("PATCH", f"/api/lists/{first['id']}", json={"name": "work"})
    assert (same.status_code, same.json()["name"]) == (200, "work")  # re-casing your own name is fine


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": None},
        {"name": "a\x00"},
        {"name": "ok", "id": "x"},
    ],
)
async def test_invalid_list_bodies_are_422(api: Api, body: dict[str, Any]) -> None:
    assert (await api.request("POST", "/api/lists", json=body)).status_code == 422
    assert (await api.request("GET", "/api/lists")).json()["items"] == []


async def test_put_and_patch(api: Api) -> None:
    created = await api.create_list("Old")
    url = f"/api/lists/{created['id']}"
    put = await api.request("PUT", url, json={"name": "New"})
    assert (put.status_code, put.json()["name"]) == (200, "New")
    assert (await api.request("PUT", url, json={})).status_code == 422
    patched = await api.request("PATCH", url, json={})
    assert (patched.status_code, patched.json()["name"]) == (200, "New")
    assert (await api.request("PATCH", url, json={"name": None})).status_code == 422
    assert (await api.request("PATCH", f"/api/lists/{uuid.uuid4()}", json={"name": "x"})).status_code == 404


async def test_deleting_a_list_deletes_its_todos(api: Api) -> None:
    doomed, kept = await api.create_list("Doomed"), await api.create_list("Kept")
    inside = await api.create_todo(title="inside", list_id=doomed["id"])
    other = await api.create_todo(title="other", list_id=kept["id"])
    loose = await api.create_todo(title="loose")
    response = await api.request("DELETE", f"/api/lists/{doomed['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert (await api.request("GET", f"/api/lists/{doomed['id']}")).status_code == 404
    assert (await api.request("GET", f"/api/todos/{inside['id']}")).status_code == 404
    remaining = {item["id"] for item in await api.all_pages("/api/todos")}
    assert remaining == {other["id"], loose["id"]}
    assert (await api.request("DELETE", f"/api/lists/{doomed['id']}")).status_code == 404


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "name", "-name"])
async def test_sorting_and_paging(api: Api, sort: str) -> None:
    names = ["delta", "Alpha", "charlie", "Bravo", "echo"]
    created = [await api.create_list(name) for name in names]
    walked = await api.all_pages("/api/lists", sort=sort, limit=2)
    if sort.endswith("created_at"):
        expected = [item["id"] for item in created]
    else:
        expected = [item["id"] for item in sorted(created, key=lambda item: item["name"].lower())]
    if sort.startswith("-"):
        expected.reverse()
    assert [item["id"] for item in walked] == expected


async def test_default_list_order_is_creation_order(api: Api) -> None:
    created = [await api.create_list(name) for name in ("b", "a", "c")]
    assert [item["id"] for item in await api.all_pages("/api/lists")] == [item["id"] for item in created]


async def test_bad_list_queries_are_422(api: Api) -> None:
    await api.create_list("x")
    await api.create_list("y")
    cursor = (await api.request("GET", "/api/lists", params={"limit": 1})).json()["next_cursor"]
    for params in ({"sort": "title"}, {"limit": 0}, {"cursor": "garbage"}, {"cursor": cursor, "sort": "name"}):
        assert (await api.request("GET", "/api/lists", params=params)).status_code == 422, params
