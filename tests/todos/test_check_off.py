"""Checking a todo off and reopening it: one completion per ordinary todo in its history, whichever
path the write takes (one UPDATE for a plain todo, the locked path for one with subtasks, a series
or reminders), with the same versions, preconditions and answers on both."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from tests.api import Api

PLAIN: dict[str, Any] = {}
WITH_REMINDER: dict[str, Any] = {"due_at": "2030-01-01T09:00:00Z", "reminders": [{"before_due": "PT15M"}]}


async def _history(api: Api, todo_id: str) -> list[dict[str, Any]]:
    return await api.all_pages(f"/api/todos/{todo_id}/completions")


@pytest.mark.parametrize("extra", [PLAIN, WITH_REMINDER], ids=["plain", "with-reminder"])
async def test_completing_and_reopening_keep_one_completion_in_the_history(api: Api, extra: dict[str, Any]) -> None:
    todo = await api.create_todo(title="water the plants", **extra)
    first = (await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True})).json()
    assert first["completed"] is True
    history = await _history(api, todo["id"])
    assert [item["completed_at"] for item in history] == [first["completed_at"]]
    reopened = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": False, "title": "again"})
    assert (reopened.json()["completed"], reopened.json()["completed_at"], reopened.json()["title"]) == (
        False,
        None,
        "again",
    )
    assert await _history(api, todo["id"]) == []  # the reopening forgot the completion it undid
    second = (await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True})).json()
    assert [item["completed_at"] for item in await _history(api, todo["id"])] == [second["completed_at"]]


async def test_a_write_that_changes_nothing_still_bumps_the_version_and_keeps_the_history(api: Api) -> None:
    todo = await api.create_todo(title="t")
    done = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True})
    again = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True})
    assert again.status_code == 200
    assert int(again.headers["etag"].strip('"')) == int(done.headers["etag"].strip('"')) + 1
    assert again.json()["completed_at"] == done.json()["completed_at"]  # the first completion time stays
    assert len(await _history(api, todo["id"])) == 1


async def test_a_stale_if_match_is_412_and_a_missing_todo_404(api: Api) -> None:
    todo = await api.create_todo(title="t")
    etag = (await api.request("GET", f"/api/todos/{todo['id']}")).headers["etag"]
    assert (await api.request("PATCH", f"/api/todos/{todo['id']}", json={"title": "moved on"})).status_code == 200
    stale = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True}, headers={"If-Match": etag})
    assert (stale.status_code, stale.json()["code"]) == (412, "precondition_failed")
    assert await _history(api, todo["id"]) == []
    current = (await api.request("GET", f"/api/todos/{todo['id']}")).headers["etag"]
    fresh = await api.request(
        "PATCH", f"/api/todos/{todo['id']}", json={"completed": True}, headers={"If-Match": current}
    )
    assert fresh.status_code == 200
    missing = await api.request("PATCH", "/api/todos/00000000-0000-4000-8000-000000000000", json={"completed": True})
    assert missing.status_code == 404


async def test_another_users_todo_is_404_and_unchanged(api: Api, other_api: Api) -> None:
    todo = await other_api.create_todo(title="theirs")
    response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": True})
    assert response.status_code == 404
    theirs = (await other_api.request("GET", f"/api/todos/{todo['id']}")).json()
    assert theirs["completed"] is False
    assert await _history(other_api, todo["id"]) == []


@pytest.mark.parametrize("completed", [True, False], ids=["check-off", "reopening"])
async def test_a_plain_check_off_and_its_history_are_one_statement(api: Api, completed: bool) -> None:
    """The README's round-trip count: a check-off that changes the history runs one statement in
    its transaction (`BEGIN`, the statement, `COMMIT`), the history written by its CTEs. (A worker's
    identity-cache miss adds its look-up to the same transaction: `tests/users/test_identity_resolution.py`.)"""
    todo = await api.create_todo(title="one statement", completed=not completed)
    seen: list[str] = []

    def record(state: ORMExecuteState) -> None:
        statement = str(state.statement)
        if "todos" in statement or "todo_completions" in statement:
            seen.append(statement)

    event.listen(Session, "do_orm_execute", record)
    try:
        response = await api.request("PATCH", f"/api/todos/{todo['id']}", json={"completed": completed})
    finally:
        event.remove(Session, "do_orm_execute", record)
    assert response.status_code == 200
    assert len(seen) == 1, seen
    assert "todo_completions" in seen[0]
    history = await _history(api, todo["id"])
    assert len(history) == (1 if completed else 0)
