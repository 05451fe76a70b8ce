"""GET /api/todos: filters, sorts (nulls last, total order), keyset pages, search escaping."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.api import Api

PRIORITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


async def seed(api: Api) -> dict[str, dict[str, Any]]:
    """A small, varied set of todos; keyed by title."""
    work, home = await api.create_list("Work"), await api.create_list("Home")
    specs: list[dict[str, Any]] = [
        {"title": "alpha", "priority": "high", "tags": ["Work", "urgent"], "list_id": work["id"],
         "due_at": "2030-01-03T00:00:00Z"},
        {"title": "Bravo", "priority": "low", "tags": ["work"], "list_id": work["id"], "completed": True},
        {"title": "charlie", "priority": "medium", "tags": ["home"], "list_id": home["id"],
         "due_at": "2030-01-01T00:00:00Z"},
        {"title": "delta", "priority": "none", "tags": [], "due_at": "2030-01-02T00:00:00Z", "completed": True},
        {"title": "Echo", "priority": "high", "tags": ["URGENT"], "description": "call 50% of people"},
        {"title": "foxtrot", "priority": "none", "tags": ["work", "home"], "list_id": home["id"],
         "due_at": "2030-01-02T00:00:00Z"},
    ]  # fmt: skip
    created = {}
    for spec in specs:
        created[spec["title"]] = await api.create_todo(**spec)
    created["_work"], created["_home"] = work, home
    return created


async def listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    return await api.all_pages("/api/todos", **params)


async def titles(api: Api, **params: Any) -> list[str]:
    return [item["title"] for item in await listed(api, **params)]


async def test_default_order_is_newest_first(api: Api) -> None:
    await seed(api)
    assert await titles(api) == ["foxtrot", "Echo", "delta", "charlie", "Bravo", "alpha"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"completed": "true"}, {"Bravo", "delta"}),
        ({"completed": "false"}, {"alpha", "charlie", "Echo", "foxtrot"}),
        ({"priority": "high"}, {"alpha", "Echo"}),
        ({"tag": "work"}, {"alpha", "Bravo", "foxtrot"}),
        ({"tag": ["WORK", "home"]}, {"foxtrot"}),
        ({"tag": "urgent"}, {"alpha", "Echo"}),
        ({"tag": "nothing"}, set()),
        ({"list_id": "none"}, {"delta", "Echo"}),
        ({"due_before": "2030-01-02T00:00:00Z"}, {"charlie"}),
        ({"due_after": "2030-01-02T00:00:00Z"}, {"alpha"}),
        ({"due_after": "2030-01-01T00:00:00Z", "due_before": "2030-01-03T00:00:00Z"}, {"delta", "foxtrot"}),
        ({"q": "ALPH"}, {"alpha"}),
        ({"q": "50%"}, {"Echo"}),
        ({"completed": "false", "tag": "work", "priority": "none"}, {"foxtrot"}),
    ],
)
async def test_filters(api: Api, params: dict[str, Any], expected: set[str]) -> None:
    await seed(api)
    assert set(await titles(api, **params)) == expected


async def test_filter_by_list(api: Api) -> None:
    created = await seed(api)
    assert set(await titles(api, list_id=created["_work"]["id"])) == {"alpha", "Bravo"}
    assert set(await titles(api, list_id=created["_home"]["id"], completed="false")) == {"charlie", "foxtrot"}
    assert await titles(api, list_id=str(uuid.uuid4())) == []


async def test_search_treats_like_wildcards_literally(api: Api) -> None:
    for title in ("100% done", "100 done", "snake_case", "snakeXcase", r"back\slash", "backslash", "a/b"):
        await api.create_todo(title=title)
    assert await titles(api, q="%") == ["100% done"]
    assert await titles(api, q="0%") == ["100% done"]
    assert await titles(api, q="_") == ["snake_case"]
    assert await titles(api, q="e_c") == ["snake_case"]
    assert await titles(api, q="\\") == [r"back\slash"]
    assert await titles(api, q="/") == ["a/b"]
    assert set(await titles(api, q="DONE")) == {"100% done", "100 done"}


def expected_order(items: list[dict[str, Any]], sort: str) -> list[str]:
    """The contract's order computed independently: nulls last either way, ties by id."""
    field = sort.lstrip("-")
    descending = sort.startswith("-")
    present = [item for item in items if item[field] is not None]
    missing = [item for item in items if item[field] is None]

    def key(item: dict[str, Any]) -> Any:
        value = item[field]
        if field == "priority":
            value = PRIORITY_RANK[value]
        elif field == "title":
            value = value.lower()
        elif field.endswith("_at"):
            value = datetime.fromisoformat(value)
        return (value, uuid.UUID(item["id"]))

    ordered = sorted(present, key=key, reverse=descending)
    ordered += sorted(missing, key=lambda item: uuid.UUID(item["id"]), reverse=descending)
    return ids(ordered)


@pytest.mark.parametrize(
    "sort",
    ["created_at", "-created_at", "updated_at", "-updated_at", "due_at", "-due_at", "priority", "-priority",
     "title", "-title"],
)  # fmt: skip
async def test_every_sort_is_total_with_nulls_last(api: Api, sort: str) -> None:
    await seed(api)
    # Equal keys (two "high", two identical due dates) must be ordered by id; page size 2 crosses them.
    everything = await listed(api, sort=sort, limit=200)
    paged = await listed(api, sort=sort, limit=2)
    assert ids(paged) == ids(everything)
    assert ids(everything) == expected_order(everything, sort)


async def test_pages_walk_every_item_exactly_once(api: Api) -> None:
    created = [await api.create_todo(title=f"item {i:03}", priority="low") for i in range(53)]
    for sort in ("-created_at", "title", "-priority"):
        walked = await listed(api, sort=sort, limit=10)
        assert sorted(ids(walked)) == sorted(ids(created))
        assert len(set(ids(walked))) == 53


async def test_last_page_has_null_cursor_and_limit_bounds(api: Api) -> None:
    for i in range(3):
        await api.create_todo(title=f"t{i}")
    page = (await api.request("GET", "/api/todos", params={"limit": 3})).json()
    assert len(page["items"]) == 3
    assert page["next_cursor"] is None
    for limit in (0, 201, -1, "x"):
        response = await api.request("GET", "/api/todos", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    assert (await api.request("GET", "/api/todos", params={"limit": 200})).status_code == 200


async def test_the_default_limit_is_50(api: Api) -> None:
    """README (Listing todos): "`limit` 1–200 (default 50)"."""
    commands = [{"type": "todo_add", "uuid": str(uuid.uuid4()), "args": {"title": f"t{n}"}} for n in range(60)]
    seeded = await api.request("POST", "/api/batch", json={"commands": commands})  # one request, not 60
    assert seeded.status_code == 200, seeded.text
    assert {result["status"] for result in seeded.json()["results"]} == {201}
    first = (await api.request("GET", "/api/todos")).json()
    assert len(first["items"]) == 50
    assert isinstance(first["next_cursor"], str)
    rest = (await api.request("GET", "/api/todos", params={"cursor": first["next_cursor"]})).json()
    assert (len(rest["items"]), rest["next_cursor"]) == (10, None)
    assert len(set(ids(first["items"])) | set(ids(rest["items"]))) == 60


async def test_concurrent_inserts_never_cause_duplicates_or_skips(api: Api) -> None:
    before = [await api.create_todo(title=f"old {i}") for i in range(40)]
    seen: list[str] = []
    cursor: str | None = None
    inserted = 0
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page, *_ = await asyncio.gather(
            api.request("GET", "/api/todos", params=params),
            *(api.create_todo(title=f"new {inserted + i}") for i in range(3)),
        )
        inserted += 3
        seen.extend(ids(page.json()["items"]))
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "an item was returned twice"
    assert set(ids(before)) <= set(seen), "a pre-existing item was skipped"


async def next_cursor(api: Api, **params: Any) -> str:
    response = await api.request("GET", "/api/todos", params={"limit": 1, **params})
    cursor = response.json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


async def test_tampered_or_foreign_cursors_are_422(api: Api, other_api: Api) -> None:
    await api.create_todo(title="one")
    await api.create_todo(title="two")
    await other_api.create_todo(title="theirs")
    await other_api.create_todo(title="theirs too")
    cursor = await next_cursor(api)
    sealed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    edited = sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]  # one bit of the ciphertext
    bad_cursors = [
        flip(cursor, 3),
        flip(cursor, len(cursor) - 2),
        cursor[:-4],
        cursor[: len(cursor) // 2],
        base64.urlsafe_b64encode(edited).rstrip(b"=").decode(),
        "not-a-cursor",
        "....",
        await next_cursor(other_api),  # another user's cursor
    ]
    for bad in bad_cursors:
        response = await api.request("GET", "/api/todos", params={"limit": 1, "cursor": bad})
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["query", "cursor"]
    # A cursor belongs to its query: other sort or other filters → 422.
    for params in ({"sort": "title"}, {"completed": "false"}, {"q": "o"}):
        response = await api.request("GET", "/api/todos", params={"limit": 1, "cursor": cursor, **params})
        assert response.status_code == 422, params
    assert (await api.request("GET", "/api/todos", params={"limit": 5, "cursor": cursor})).status_code == 200
    first_page = await api.request("GET", "/api/todos", params={"limit": 1, "cursor": ""})  # empty = no cursor
    # Cursors are sealed with a fresh nonce each time: compare the pages, not the cursor text.
    assert first_page.json()["items"] == (await api.request("GET", "/api/todos", params={"limit": 1})).json()["items"]


@pytest.mark.parametrize(
    "params",
    [
        {"list_id": "nope"},
        {"priority": "urgent"},
        {"sort": "colour"},
        {"sort": "--title"},
        {"completed": "perhaps"},
        {"due_before": "2030-01-01T00:00:00"},
        {"due_after": "yesterday"},
        {"due_before": "0.5"},
        {"tag": ""},
        {"tag": "x" * 51},
        {"q": "x" * 201},
        {"q": "nul\x00"},
        {"unknown": "1"},
    ],
)
async def test_invalid_query_parameters_are_422(api: Api, params: dict[str, Any]) -> None:
    response = await api.request("GET", "/api/todos", params=params)
    assert response.status_code == 422, response.text
