"""The todo resource: status codes, Location, validation edges, PUT vs PATCH, completed_at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api import Api

TODO_FIELDS = {
    "id",
    "title",
    "description",
    "completed",
    "completed_at",
    "due_at",
    "priority",
    "tags",
    "list_id",
    "created_at",
    "updated_at",
    # the planner's (issue 15)
    "parent_id",
    "position",
    "recurrence",
    "time_zone",
    "reminders",
}


def parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, f"{value} has no offset"
    return parsed


async def test_create_returns_201_location_and_defaults(api: Api) -> None:
    response = await api.request("POST", "/api/todos", json={"title": "Buy milk"})
    assert response.status_code == 201
    todo = response.json()
    assert set(todo) == TODO_FIELDS
    assert response.headers["location"] == f"/api/todos/{todo['id']}"
    assert todo["title"] == "Buy milk"
    assert (todo["description"], todo["completed"], todo["completed_at"]) == ("", False, None)
    assert (todo["due_at"], todo["priority"], todo["tags"], todo["list_id"]) == (None, "none", [], None)
    assert (todo["parent_id"], todo["recurrence"], todo["time_zone"], todo["reminders"]) == (None, None, "UTC", [])
    assert parse(todo["created_at"]) == parse(todo["updated_at"])
    assert parse(todo["created_at"]).utcoffset() == UTC.utcoffset(None)

    fetched = await api.request("GET", response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == todo


async def test_create_with_every_field(api: Api) -> None:
    work = await api.create_list("Work")
    todo = await api.create_todo(
        title="  Ship it  ",
        description="all of it",
        completed=True,
        due_at="2030-01-02T03:04:05+02:00",
        priority="high",
        tags=["Work", " urgent ", "work", "URGENT", "home"],
        list_id=work["id"],
    )
    assert todo["title"] == "Ship it"
    assert todo["description"] == "all of it"
    assert todo["completed"] is True
    assert todo["completed_at"] is not None
    assert todo["due_at"] == "2030-01-02T01:04:05Z"  # returned in UTC
    assert todo["priority"] == "high"
    assert todo["tags"] == ["Work", "urgent", "home"]  # trimmed, de-duplicated case-insensitively, order kept
    assert todo["list_id"] == work["id"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "   \t\n"}, ["body", "title"]),
        ({"title": "x" * 501}, ["body", "title"]),
        ({"title": 5}, ["body", "title"]),
        ({"title": None}, ["body", "title"]),
        ({"title": "a\x00b"}, ["body", "title"]),
        ({"title": "ok", "description": "x" * 10_001}, ["body", "description"]),
        ({"title": "ok", "description": "nul\x00"}, ["body", "description"]),
        ({"title": "ok", "due_at": "2030-01-01T10:00:00"}, ["body", "due_at"]),
        ({"title": "ok", "due_at": "not a date"}, ["body", "due_at"]),
        ({"title": "ok", "due_at": "0001-01-01T00:00:00+01:00"}, ["body", "due_at"]),
        ({"title": "ok", "priority": "urgent"}, ["body", "priority"]),
        ({"title": "ok", "tags": ["x"] * 21}, ["body", "tags"]),
        ({"title": "ok", "tags": [""]}, ["body", "tags", 0]),
        ({"title": "ok", "tags": ["y" * 51]}, ["body", "tags", 0]),
        ({"title": "ok", "tags": "work"}, ["body", "tags"]),
        ({"title": "ok", "list_id": "not-a-uuid"}, ["body", "list_id"]),
        ({"title": "ok", "completed": "maybe"}, ["body", "completed"]),
        ({"title": "ok", "completed": "yes"}, ["body", "completed"]),
        ({"title": "ok", "completed": 0}, ["body", "completed"]),
        ({"title": "ok", "due_at": 0}, ["body", "due_at"]),
        ({"title": "ok", "due_at": "1700000000"}, ["body", "due_at"]),
        ({"title": "ok", "id": str(uuid.uuid4())}, ["body", "id"]),
        ({"title": "ok", "user_id": str(uuid.uuid4())}, ["body", "user_id"]),
        ({"title": "ok", "created_at": "2020-01-01T00:00:00Z"}, ["body", "created_at"]),
        ({"title": "ok", "completed_at": "2020-01-01T00:00:00Z"}, ["body", "completed_at"]),
    ],
)
async def test_invalid_bodies_are_422_pointing_at_the_field(api: Api, body: dict[str, Any], loc: list[Any]) -> None:
    response = await api.request("POST", "/api/todos", json=body)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]
    listing = await api.request("GET", "/api/todos")
    assert listing.json()["items"] == []  # nothing half-written


async def test_boundary_lengths_are_accepted(api: Api) -> None:
    todo = await api.create_todo(title="x" * 500, description="d" * 10_000, tags=[f"t{i}" for i in range(20)])
    assert len(todo["title"]) == 500
    assert len(todo["description"]) == 10_000
    assert len(todo["tags"]) == 20
    deduped = await api.create_todo(tags=[f"t{i}" for i in range(19)] + ["T0"])
    assert len(deduped["tags"]) == 19
    padded = await api.create_todo(title="  " + "y" * 490 + "  ", tags=["z" * 50])
    assert padded["title"] == "y" * 490


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": "unterminated', "application/json"),
        (b"not json at all", "application/json"),
        (b'["a", "list"]', "application/json"),
        (b'"just a string"', "application/json"),
        (b'{"title": "\\ud800 lone surrogate"}', "application/json"),
        (b'{"title": "\\udfff"}', "application/json"),
        (b"\xff\xfe invalid utf-8", "application/json"),
    ],
)
async def test_hostile_payloads_are_422_never_500(api: Api, content: bytes, content_type: str) -> None:
    response = await api.request("POST", "/api/todos", content=content, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    assert response.json()["code"] == "validation_failed"


async def test_invalid_ids_in_path_are_422_and_unknown_ids_404(api: Api) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"title": "x"} if method in {"PUT", "PATCH"} else None
        bad = await api.request(method, "/api/todos/not-a-uuid", json=body)
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["path", "todo_id"]
        missing = await api.request(method, f"/api/todos/{uuid.uuid4()}", json=body)
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Not found", "code": "not_found"}


async def test_put_replaces_every_field_and_resets_omitted_ones(api: Api) -> None:
    work = await api.create_list("Work")
    todo = await api.create_todo(
        title="old", description="desc", due_at="2030-01-01T00:00:00Z", priority="high", tags=["a"], list_id=work["id"]
    )
    response = await api.request("PUT", f"/api/todos/{todo['id']}", json={"title": "new"})
    assert response.status_code == 200
    replaced = response.json()
    assert replaced["title"] == "new"
    assert (replaced["description"], replaced["due_at"], replaced["priority"]) == ("", None, "none")
    assert (replaced["tags"], replaced["list_id"], replaced["completed"]) == ([], None, False)
    assert replaced["id"] == todo["id"]
    assert replaced["created_at"] == todo["created_at"]
    assert parse(replaced["updated_at"]) > parse(todo["updated_at"])


async def test_put_requires_a_full_valid_body(api: Api) -> None:
    todo = await api.create_todo(title="keep me")
    response = await api.request("PUT", f"/api/todos/{todo['id']}", json={"description": "no title"})
    assert response.status_code == 422
    assert (await api.request("GET", f"/api/todos/{todo['id']}")).json() == todo


async def test_patch_changes_only_the_fields_sent(api: Api) -> None:
    todo = await api.create_todo(title="t", description="d", priority="low", tags=["a"], due_at="2030-01-01T00:00:00Z")
    response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"priority": "medium"})
    assert response.status_code == 200
    patched = response.json()
    assert patched["priority"] == "medium"
    unchanged = {k: v for k, v in patched.items() if k not in {"priority", "updated_at"}}
    assert unchanged == {k: v for k, v in todo.items() if k not in {"priority", "updated_at"}}


async def test_patch_null_clears_nullable_fields_and_refuses_others(api: Api) -> None:
    work = await api.create_list("Work")
    todo = await api.create_todo(title="t", due_at="2030-01-01T00:00:00Z", list_id=work["id"])
    cleared = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"due_at": None, "list_id": None})
    assert cleared.status_code == 200
    assert (cleared.json()["due_at"], cleared.json()["list_id"]) == (None, None)
    for field in ("title", "description", "completed", "priority", "tags"):
        response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={field: None})
        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_patch_with_empty_body_changes_nothing(api: Api) -> None:
    todo = await api.create_todo(title="t")
    response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={})
    assert response.status_code == 200
    assert response.json() == todo


async def test_patch_refuses_unknown_and_read_only_fields(api: Api) -> None:
    todo = await api.create_todo(title="t")
    for field, value in (("id", str(uuid.uuid4())), ("completed_at", "2020-01-01T00:00:00Z"), ("nope", 1)):
        response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={field: value})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert (await api.request("GET", f"/api/todos/{todo['id']}")).json() == todo


async def test_completed_at_is_set_kept_and_cleared_by_the_server(api: Api) -> None:
    todo = await api.create_todo(title="t")
    url = f"/api/todos/{todo['id']}"
    done = (await api.request("PATCH", url, json={"completed": True})).json()
    assert done["completed"] is True
    completed_at = parse(done["completed_at"])
    assert completed_at >= parse(todo["created_at"])

    again = (await api.request("PATCH", url, json={"completed": True, "title": "renamed"})).json()
    assert again["completed_at"] == done["completed_at"]  # staying completed keeps the first time
    replaced = (await api.request("PUT", url, json={"title": "t", "completed": True})).json()
    assert replaced["completed_at"] == done["completed_at"]

    reopened = (await api.request("PATCH", url, json={"completed": False})).json()
    assert (reopened["completed"], reopened["completed_at"]) == (False, None)
    redone = (await api.request("PATCH", url, json={"completed": True})).json()
    assert parse(redone["completed_at"]) > completed_at


async def test_created_completed_todo_has_completed_at(api: Api) -> None:
    todo = await api.create_todo(title="t", completed=True)
    assert todo["completed_at"] == todo["created_at"]


async def test_delete_is_204_then_404(api: Api) -> None:
    todo = await api.create_todo(title="t")
    url = f"/api/todos/{todo['id']}"
    deleted = await api.request("DELETE", url)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await api.request("GET", url)).status_code == 404
    assert (await api.request("DELETE", url)).status_code == 404
    assert (await api.request("PATCH", url, json={"title": "x"})).status_code == 404


async def test_list_id_must_be_one_of_the_users_lists(api: Api, other_api: Api) -> None:
    foreign = await other_api.create_list("Theirs")
    missing = await api.request("POST", "/api/todos", json={"title": "t", "list_id": str(uuid.uuid4())})
    crossed = await api.request("POST", "/api/todos", json={"title": "t", "list_id": foreign["id"]})
    assert missing.status_code == crossed.status_code == 422
    strip = [{k: v for k, v in e.items() if k != "input"} for e in missing.json()["detail"]]
    assert strip == [{k: v for k, v in e.items() if k != "input"} for e in crossed.json()["detail"]]
    assert strip[0]["loc"] == ["body", "list_id"]

    todo = await api.create_todo(title="mine")
    patched = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"list_id": foreign["id"]})
    assert patched.status_code == 422
    assert patched.json()["detail"][0]["loc"] == ["body", "list_id"]
    assert (await api.request("GET", f"/api/todos/{todo['id']}")).json()["list_id"] is None


async def test_todos_can_move_between_own_lists(api: Api) -> None:
    first, second = await api.create_list("One"), await api.create_list("Two")
    todo = await api.create_todo(title="t", list_id=first["id"])
    moved = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"list_id": second["id"]})
    assert moved.json()["list_id"] == second["id"]
