"""Every shape of a conditional write: which fields a PATCH sets, and how many entity tags its
If-Match names. The repositories build one statement per shape (the fields set, the number of
accepted states), so a shape no example test sends is a statement nobody compiled: two or more
list ETags were a 500 once (their bind parameters collided with SQLAlchemy's own names). Never a
5xx; 200 (204 for a DELETE) when If-Match is absent, `*` or names the current tag, 412 otherwise,
and a 412 changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api import Api
from tests.planner.strategies import ZONES

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
TODO_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "title": WORD,
    "description": st.text("abc xyz", max_size=20),
    "completed": st.booleans(),
    "due_at": st.sampled_from(["2030-01-31T09:00:00Z", "2030-02-01T17:30:00+02:00"]),
    "priority": st.sampled_from(["none", "low", "medium", "high"]),
    "tags": st.lists(WORD, max_size=3),
    "recurrence": st.sampled_from([None, "FREQ=DAILY;COUNT=3", "FREQ=WEEKLY;BYDAY=MO,WE"]),
    "time_zone": st.sampled_from(ZONES),
    "reminders": st.sampled_from([[], [{"before_due": "PT1H"}]]),
    "list_id": st.booleans(),  # True: the user's list, False: null
    "parent_id": st.none(),
}


def _stale(resource: str, count: int) -> list[str]:
    """Well-formed tags of the resource's shape that name no state it is in."""
    return [f'"{800 + n}"' if resource == "todo" else f'"{800 + n}.{n}.1"' for n in range(count)]


PRECONDITIONS = st.one_of(
    st.none(),  # no If-Match
    st.just("*"),
    st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 5)),  # (current named?, stale count, where)
)


def _if_match(resource: str, current_tag: str, precondition: Any) -> tuple[dict[str, str], bool]:
    """The If-Match header for `precondition`, and whether the write may go through."""
    if precondition is None:
        return {}, True
    if precondition == "*":
        return {"If-Match": "*"}, True
    named, stale, where = precondition
    tags = _stale(resource, stale)
    if named:
        tags.insert(where % (len(tags) + 1), current_tag)
    if not tags:
        tags = _stale(resource, 1)
    return {"If-Match": ", ".join(tags)}, named


@HYPOTHESIS
@given(
    fields=st.fixed_dictionaries({}, optional=TODO_FIELDS),
    precondition=PRECONDITIONS,
    delete=st.booleans(),
)
async def test_todo_writes_of_every_shape(
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    fields: dict[str, Any],
    precondition: Any,
    delete: bool,
) -> None:
    api = Api(client, auth())  # a user per example: the list quota (100) holds for a whole search
    listed = await api.create_list("shapes")
    todo = await api.create_todo(title="shape", due_at="2030-01-30T08:00:00Z")
    url = f"/api/todos/{todo['id']}"
    current = (await api.request("GET", url)).headers["etag"]
    headers, goes_through = _if_match("todo", current, precondition)
    if "list_id" in fields:
        fields["list_id"] = listed["id"] if fields["list_id"] else None
    method, body = ("DELETE", None) if delete else ("PATCH", fields)
    response = await api.client.request(method, url, json=body, headers={**api.headers, **headers})
    if goes_through:
        assert response.status_code == (204 if delete else 200), (fields, headers, response.text)
    else:
        assert (response.status_code, response.json()["code"]) == (412, "precondition_failed"), response.text
        assert (await api.request("GET", url)).headers["etag"] == current


@HYPOTHESIS
@given(rename=st.booleans(), precondition=PRECONDITIONS, delete=st.booleans(), todos=st.integers(0, 2))
async def test_list_writes_of_every_shape(
    client: httpx.AsyncClient,
    auth: Callable[..., dict[str, str]],
    rename: bool,
    precondition: Any,
    delete: bool,
    todos: int,
) -> None:
    """A list's tag names its version and counts (`"<version>.<todos>.<open>"`)."""
    api = Api(client, auth())  # a user per example
    number = uuid.uuid4()
    listed = await api.create_list(f"list-{number}")
    for _ in range(todos):
        await api.create_todo(title="in it", list_id=listed["id"])
    url = f"/api/lists/{listed['id']}"
    current = (await api.request("GET", url)).headers["etag"]
    headers, goes_through = _if_match("list", current, precondition)
    body = {"name": f"renamed-{number}"} if rename else {}
    method = "DELETE" if delete else "PATCH"
    response = await api.client.request(method, url, json=None if delete else body, headers={**api.headers, **headers})
    if goes_through:
        assert response.status_code == (204 if delete else 200), (body, headers, response.text)
    else:
        assert (response.status_code, response.json()["code"]) == (412, "precondition_failed"), response.text
        assert (await api.request("GET", url)).headers["etag"] == current
